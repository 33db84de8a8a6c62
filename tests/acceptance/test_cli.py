"""The command line as a newcomer meets it: the `qbwc-bridge` entry point in subprocesses,
on SQLite and on PostgreSQL. Every failure is one line saying what to do; nothing is
created by a command that only reads; options describe themselves."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import make_order_json

from qbwc_bridge.cli import build_parser
from qbwc_bridge.config import ENV_VARS
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.store import Store

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "fixtures" / "orders" / "sample-orders.json"
INVALID = REPO / "fixtures" / "orders" / "invalid-orders.json"
PASSWORD = "a-long-password"


def _env(url: str, **more: str) -> dict[str, str]:
    return {**os.environ, "QBWC_BRIDGE_DATABASE_URL": url, **more}


def _cli(
    url: str, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_env(url),
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with one line on stderr (no traceback); that line."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qbwc-bridge: "), result.stderr
    return lines[0]


# --- databases ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody ran init-db on: a SQLite path with no file, or a new, empty
    PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qbwc_bridge.db'}"
        return
    from sqlalchemy import create_engine, make_url

    server = make_url(request.getfixturevalue("postgres_database"))
    name = f"qbwc_cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _tables(url: str) -> list[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture
def company(database_url: str) -> str:
    """A migrated database (SQLite or PostgreSQL) with the company acme: its URL."""
    added = _cli(
        database_url,
        "company",
        "add",
        "acme",
        "--username",
        "acme-user",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    return database_url


def _orders_file(path: Path, count: int) -> Path:
    with path.open("w") as handle:
        handle.write("[")
        for i in range(count):
            handle.write(("," if i else "") + json.dumps(make_order_json(OrderNumber=f"S{i}")))
        handle.write("]")
    return path


def _mark_error(url: str, *numbers: str) -> None:
    store = Store.from_url(url)
    try:
        with store.transaction() as tx:
            for number in numbers:
                tx.exec_driver_sql(
                    "UPDATE orders SET status = 'error', error = 'Item WIDGET missing' "
                    f"WHERE order_number = '{number}'"
                )
    finally:
        store.database.dispose()


# --- 1. before init-db, and URLs that lead nowhere --------------------------------------------

READING_COMMANDS = [
    ("status", "--company", "acme"),
    ("status", "--company", "acme", "--json"),
    ("company", "show", "acme"),
    ("runs", "--company", "acme"),
    ("product-updates", "--company", "acme"),
    ("retry", "--company", "acme"),
    ("inventory", "--company", "acme"),
    ("enqueue", "--company", "acme", str(SAMPLE)),
    ("company", "add", "acme", "--username", "acme-user", "--password", PASSWORD),
    ("serve", "--port", "0"),
    ("channel", "list"),
    ("channel", "show", "shop"),
    ("pull", "--channel", "shop"),
    ("push", "--channel", "shop"),
    ("worker",),
    ("api-user", "list"),
    ("map", "list", "--company", "acme"),
    ("summaries", "--company", "acme"),
    ("quickbooks-transactions", "--company", "acme"),
]


def test_before_init_db_every_command_says_to_run_it_and_creates_nothing(
    empty_url: str, tmp_path: Path
) -> None:
    for command in READING_COMMANDS:
        line = _one_line_error(_cli(empty_url, *command, cwd=tmp_path))
        assert "The database has no schema yet" in line, (command, line)
        assert "run `qbwc-bridge init-db`" in line, (command, line)
        assert "not reachable" not in line
    if empty_url.startswith("sqlite"):
        assert list(tmp_path.iterdir()) == []  # no qbwc_bridge.db, -wal or -shm
    else:
        assert _tables(empty_url) == []
    created = _cli(empty_url, "init-db", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Schema upgraded from empty to" in created.stdout
    again = _cli(empty_url, "init-db", cwd=tmp_path)
    assert "Schema is up to date" in again.stdout
    line = _one_line_error(_cli(empty_url, "status", "--company", "acme", cwd=tmp_path))
    assert "No company named 'acme'" in line


def test_the_default_database_is_not_created_by_a_reading_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QBWC_BRIDGE_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", "status", "--company", "acme"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    line = _one_line_error(result)
    assert f"no file {tmp_path / 'qbwc_bridge.db'}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("foo://bar", "QBWC_BRIDGE_DATABASE_URL 'foo://bar' is not a database URL"),
        ("not a url", "QBWC_BRIDGE_DATABASE_URL 'not a url' is not a database URL"),
        ("postgres://qbwc:s3cret@127.0.0.1/db", "no database kind 'postgres'"),
        (
            "postgresql+psycopg://postgres@127.0.0.1:1/qbwc_bridge",
            "Cannot connect to PostgreSQL at 127.0.0.1:1: Connection refused; check "
            "QBWC_BRIDGE_DATABASE_URL",
        ),
        ("sqlite:///{tmp}/no/such/folder/q.db", "its folder does not exist"),
    ],
    ids=["unknown-kind", "unparsable", "old-postgres-name", "wrong-port", "missing-folder"],
)
def test_a_database_url_that_leads_nowhere_is_one_line(
    url: str, expected: str, tmp_path: Path
) -> None:
    url = url.replace("{tmp}", str(tmp_path))
    for command in (("init-db",), ("status", "--company", "acme")):
        line = _one_line_error(_cli(url, *command, cwd=tmp_path))
        assert expected in line, line
        assert "s3cret" not in line
        assert "sqlite:///PATH or postgresql+psycopg://" in line or "Cannot" in line


def test_a_missing_postgresql_database_says_to_create_it(postgres_database: str) -> None:
    from sqlalchemy import make_url

    url = make_url(postgres_database).set(database="qbwc_no_such_database")
    line = _one_line_error(_cli(url.render_as_string(hide_password=False), "init-db"))
    assert 'database "qbwc_no_such_database" does not exist' in line
    assert "createdb" in line and "QBWC_BRIDGE_DATABASE_URL" in line


# --- 2. company set ---------------------------------------------------------------------------


def _settings(url: str) -> dict[str, object]:
    shown = _cli(url, "company", "show", "acme", "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout)["settings"])


def _password_hash(url: str) -> str:
    store = Store.from_url(url)
    try:
        with store.transaction() as tx:
            row = tx.exec_driver_sql("SELECT password_hash FROM companies WHERE name = 'acme'")
            return str(row.scalar_one())
    finally:
        store.database.dispose()


def test_company_set_password_keeps_the_rules_of_company_add(company: str) -> None:
    before = _password_hash(company)
    line = _one_line_error(_cli(company, "company", "set", "acme", "password", "short"))
    assert "at least 8 characters" in line
    line = _one_line_error(
        _cli(company, "company", "set", "acme", "password", "--password-stdin", stdin="short\n")
    )
    assert "at least 8 characters" in line
    line = _one_line_error(
        _cli(company, "company", "set", "acme", "txn_type", "--password-stdin", stdin="x\n")
    )
    assert "--password-stdin goes with the key password" in line
    assert _password_hash(company) == before
    changed = _cli(
        company, "company", "set", "acme", "password", "--password-stdin", stdin="new-password-9\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert "password = (hidden)" in changed.stdout
    assert passwords.verify_password("new-password-9", _password_hash(company))


def test_company_set_names_every_key_and_the_real_rule(company: str) -> None:
    before = _settings(company)
    line = _one_line_error(_cli(company, "company", "set", "acme", "colour", "red"))
    known = line.split("known: ", 1)[1].split(", ")
    assert sorted(known) == sorted([*CompanySettings.names(), "password"])
    line = _one_line_error(_cli(company, "company", "set", "acme", "batch_max", "10"))
    assert line.endswith("batch_max must be at least batch_min (50)")
    line = _one_line_error(_cli(company, "company", "set", "acme", "batch_min", "300"))
    assert line.endswith("batch_min must be at most batch_max (250)")
    line = _one_line_error(_cli(company, "company", "set", "acme", "txn_type"))
    assert "Give the new value of txn_type" in line
    assert _settings(company) == before
    assert _cli(company, "company", "set", "acme", "batch_max", "60").returncode == 0
    assert _settings(company)["batch_max"] == 60


def test_company_set_help_lists_every_key_with_its_meaning_and_default() -> None:
    result = _cli("sqlite://", "company", "set", "--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    defaults = CompanySettings().as_dict()
    for key in CompanySettings.names():
        entry = re.search(rf"\b{key} (.+?)\(default: ([^)]*)\)", help_text)
        assert entry, key
        assert entry.group(1).strip(), key  # a meaning
        assert entry.group(2) == str(defaults[key]), key
    assert "password the Web Connector password" in help_text
    assert "--password-stdin" in help_text


# --- 3. errors that point to the right place ----------------------------------------------------


def test_enqueue_json_with_invalid_orders_prints_the_problems_as_json(company: str) -> None:
    mixed = json.loads(SAMPLE.read_text()) + json.loads(INVALID.read_text())
    result = _cli(company, "enqueue", "--company", "acme", "--json", "-", stdin=json.dumps(mixed))
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["queued"] == answer["updated"] == answer["unchanged"] == 0
    assert answer["conflicts"] == []
    assert {"order_number": "BAD-TOTAL", "field": "OrderTotal"}.items() <= answer["errors"][
        1
    ].items()
    assert all(set(error) == {"order_number", "field", "problem"} for error in answer["errors"])
    assert "--skip-invalid" in answer["error"] and "nothing was queued" in answer["error"]
    assert "--skip-invalid" in result.stderr and "skip_invalid=true" not in result.stderr


def test_retry_names_what_it_could_not_retry(company: str) -> None:
    assert _cli(company, "enqueue", "--company", "acme", str(SAMPLE)).returncode == 0
    _mark_error(company, "1001")
    result = _cli(company, "retry", "--company", "acme", "9999", "1001", "1002")
    assert result.returncode == 1
    assert "1 order back in the queue: 1001" in result.stdout
    assert "company 'acme' has no order 9999" in result.stderr
    assert "order 1002 is pending, not in error: nothing to retry" in result.stderr
    assert _cli(company, "retry", "--company", "acme").returncode == 0  # none named, none due


def test_status_into_a_closed_pipe_stops_quietly(company: str, tmp_path: Path) -> None:
    orders = _orders_file(tmp_path / "many.json", 3000)
    assert _cli(company, "enqueue", "--company", "acme", str(orders)).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "qbwc_bridge", "status", "--company", "acme", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(company),
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()  # `| head -1`
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert first.startswith(b"pending: 3000")
    assert errors == ""


def test_status_lists_counts_and_what_needs_attention(company: str, tmp_path: Path) -> None:
    orders = _orders_file(tmp_path / "many.json", 60)
    assert _cli(company, "enqueue", "--company", "acme", str(orders)).returncode == 0
    errored = [f"S{i}" for i in range(0, 50, 2)]  # 25 orders in error
    _mark_error(company, *errored)
    shown = _cli(company, "status", "--company", "acme")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    counts = dict(part.split(": ") for part in lines[0].split("  "))
    assert {k: counts[k] for k in ("pending", "in_progress", "synced", "error")} == {
        "pending": "35",
        "in_progress": "0",
        "synced": "0",
        "error": "25",
    }
    assert _numbers(shown.stdout) == errored[:20]  # the errors only, 20 by default
    assert "Showing 20 of 25" in shown.stdout and "--all" in shown.stdout
    assert shown.stdout.count("error: Item WIDGET missing") == 20
    limited = _cli(company, "status", "--company", "acme", "--status", "pending", "--limit", "3")
    assert _numbers(limited.stdout) == ["S1", "S3", "S5"]
    assert "Showing 3 of 35" in limited.stdout
    everything = _cli(company, "status", "--company", "acme", "--all")
    assert len(_numbers(everything.stdout)) == 60 and "Showing" not in everything.stdout
    whole = json.loads(_cli(company, "status", "--company", "acme", "--json").stdout)
    assert set(whole) == {"counts", "orders"} and len(whole["orders"]) == 60
    some = json.loads(
        _cli(company, "status", "--company", "acme", "--json", "--status", "error").stdout
    )
    assert [o["order_number"] for o in some["orders"]] == errored
    assert some["counts"] == whole["counts"]
    few = json.loads(_cli(company, "status", "--company", "acme", "--json", "--limit", "2").stdout)
    assert [o["order_number"] for o in few["orders"]] == ["S0", "S1"]
    none = _cli(company, "status", "--company", "acme", "--status", "synced")
    assert "No order is synced" in none.stdout
    wrong = _cli(company, "status", "--company", "acme", "--limit", "0")
    assert wrong.returncode == 2 and "--limit: must be at least 1" in wrong.stderr


def _numbers(listing: str) -> list[str]:
    """The order numbers a `status` listing shows, in its order."""
    return [line.split()[0] for line in listing.splitlines() if re.match(r"S\d+ ", line)]


def test_inventory_asks_for_a_query_without_now(company: str) -> None:
    for extra in ((), ("--now",)):
        result = _cli(company, "inventory", "--company", "acme", *extra)
        assert result.returncode == 0, result.stderr
        assert "The next Web Connector run of acme will query inventory" in result.stdout


def test_verbose_serve_logs_no_library_chatter(company: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "qbwc_bridge", "-v", "serve", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(company),
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "development server" in line:
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert lines and "development server" in lines[-1], lines
    assert re.search(r"on http://127\.0\.0\.1:\d+/qbwc", lines[-1])
    assert ":0/qbwc" not in lines[-1]  # the port chosen, not the 0 asked for
    assert not [line for line in lines if "spyne" in line], lines


# --- 4. help that teaches ---------------------------------------------------------------------


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _all_parsers(child)


def test_every_option_says_what_it_does_and_its_default() -> None:
    parser = build_parser()
    in_required_groups = {
        id(action)
        for each in _all_parsers(parser)
        for group in each._mutually_exclusive_groups
        if group.required
        for action in group._group_actions
    }
    seen = 0
    for each in _all_parsers(parser):
        formatter = each._get_formatter()
        for action in each._actions:
            if not action.option_strings or isinstance(
                action, argparse._HelpAction | argparse._VersionAction
            ):
                continue
            seen += 1
            where = f"{each.prog} {'/'.join(action.option_strings)}"
            assert action.help, f"{where} has no description"
            if action.required or id(action) in in_required_groups:
                continue
            shown = formatter._get_help_string(action)
            assert "default" in shown.lower() or "%(default)" in (action.help or ""), where
    assert seen > 60


def test_help_names_the_environment_variables() -> None:
    top = _cli("sqlite://", "--help").stdout
    for name in [*ENV_VARS, "QBWC_BRIDGE_BIND", "QBWC_BRIDGE_WORKERS", "QBWC_BRIDGE_THREADS"]:
        assert name in top, name
    assert "QBWC_BRIDGE_DATABASE_URL" in _cli("sqlite://", "init-db", "--help").stdout
    serve = " ".join(_cli("sqlite://", "serve", "--help").stdout.split())
    assert "QBWC_BRIDGE_BIND" in serve and "(default: 8080)" in serve
    for command in (("status",), ("enqueue",), ("product-updates",)):
        text = " ".join(_cli("sqlite://", *command, "--help").stdout.split())
        assert "--company COMPANY the company's name" in text, command
        assert "--json" in text and "(default: off)" in text, command
    updates = " ".join(_cli("sqlite://", "product-updates", "--help").stdout.split())
    assert "(default: 0)" in updates and "(default: 100000)" in updates


def test_the_demo_ends_with_commands_that_work_from_where_the_user_stands(
    tmp_path: Path,
) -> None:
    script = Path(sys.executable).with_name("qbwc-bridge")
    if not script.exists():
        pytest.skip(f"no qbwc-bridge script beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "QBWC_BRIDGE_DATABASE_URL"}
    env["PATH"] = "/usr/bin:/bin"  # the venv not activated: qbwc-bridge is not on PATH
    demo = subprocess.run(
        [str(script), "demo"], capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env
    )
    assert demo.returncode == 0, demo.stderr
    steps = demo.stdout.split("Next, from this folder:", 1)[1].splitlines()
    export = next(line.strip() for line in steps if line.strip().startswith("export "))
    name, _, value = export.removeprefix("export ").partition("=")
    status = next(line for line in steps if "status --company demo" in line)
    command = shlex.split(status.split("#")[0])
    assert command[0] != "qbwc-bridge"  # not on PATH here
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**env, name: shlex.split(value)[0]},
    )
    assert result.returncode == 0, result.stderr
    assert "synced: 10" in result.stdout and "1006" in result.stdout


# --- 5. progress and summaries --------------------------------------------------------------


def test_enqueue_shows_progress_on_stderr_and_a_summary_table(company: str, tmp_path: Path) -> None:
    orders = _orders_file(tmp_path / "many.json", 3000)
    result = _cli(company, "enqueue", "--company", "acme", str(orders))
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "orders read" in line]
    assert progress and all(re.search(r"\(\d+%\)$", line) for line in progress), result.stderr
    table = result.stdout
    assert "Orders from many.json" in table
    assert re.search(r"queued\s*│\s*3000\s*│", table)
    assert "3,000 orders read in" in table
    assert result.stdout.rstrip().endswith(
        "Queued 3000, updated 0, unchanged 0, conflicts 0, invalid 0"
    )
    again = _cli(company, "enqueue", "--company", "acme", "--json", str(orders))
    assert json.loads(again.stdout)["unchanged"] == 3000  # stdout is the JSON alone
    assert "orders read" in again.stderr


def test_enqueue_draws_a_live_progress_bar_on_a_terminal(company: str, tmp_path: Path) -> None:
    orders = _orders_file(tmp_path / "many.json", 3000)
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "qbwc_bridge", "enqueue", "--company", "acme", str(orders)],
            stdout=subprocess.PIPE,
            stderr=follower,
            env=_env(company, TERM="xterm", COLUMNS="100"),
        )
        os.close(follower)
        drawn = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            drawn += chunk
        out, _ = process.communicate(timeout=60)
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert b"Queueing orders" in drawn and b"\x1b[" in drawn  # drawn, with cursor moves
    assert b"\x1b[" not in out and b"Queued 3000" in out


def test_bench_ends_with_a_table_of_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", "bench", "--quick", "--only", "build"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "== qbXML build" in result.stderr  # plain progress: stderr is no terminal
    assert "qbwc-bridge bench" in result.stdout
    assert re.search(r"qbXML build\s*│\s*build_250_invoices_ms_median\s*│\s*[\d.]+", result.stdout)
