"""demo, replay and simulate as a user runs them: the console script in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from oracle import require_oracle
from soapclient import PASSWORD, Service

from qbwc_bridge.cli import main

REPO = Path(__file__).resolve().parents[2]
SESSIONS = sorted((REPO / "fixtures" / "sessions").glob("*.json"))


def _cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_demo_runs_end_to_end_and_summarises(tmp_path: Path) -> None:
    result = _cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Demo summary" in out
    assert "orders synced" in out and "duplicates skipped" in out and "product_updates rows" in out
    assert "Item 'WIDGET-BLUE' does not exist in QuickBooks: create it or map the SKU" in out
    assert (tmp_path / "qbwc_bridge_demo.db").exists()
    status = _cli(
        "status",
        "--company",
        "demo",
        "--json",
        cwd=tmp_path,
        env={"QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'qbwc_bridge_demo.db'}"},
    )
    counts = json.loads(status.stdout)["counts"]
    assert counts == {
        "pending": 0,
        "in_progress": 0,
        "synced": 10,
        "duplicate": 1,
        "error": 1,
        "unposted": 0,
        "summarized": 0,
        "cancelled": 0,
    }
    # a second demo starts afresh
    assert _cli("demo", cwd=tmp_path).returncode == 0


def test_demo_shows_daily_summaries_and_items_it_creates(tmp_path: Path) -> None:
    result = _cli("demo", "--daily-summary", "--create-missing-items", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "company set demo posting daily_summary" in result.stderr
    out = result.stdout
    assert "Items the bridge created in QuickBooks: WIDGET-BLUE" in out
    posted = out.split("Posted in QuickBooks:", 1)[1].split("\n\nNext", 1)[0].splitlines()
    receipts = [line.split() for line in posted if line.strip().startswith("SalesReceipt")]
    memos = [line.split() for line in posted if line.strip().startswith("CreditMemo")]
    assert receipts and memos
    for fields in receipts:
        assert len(fields[1]) == 11 and fields[1].startswith("S")  # the summary's RefNumber
        assert "daily summary " + fields[1] in " ".join(fields)
    assert all("refund summary" in " ".join(fields) for fields in memos)
    assert "summaries --company demo" in out
    status = _cli(
        "status",
        "--company",
        "demo",
        "--json",
        cwd=tmp_path,
        env={"QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'qbwc_bridge_demo.db'}"},
    )
    counts = json.loads(status.stdout)["counts"]
    # every sample order is in a daily summary (the summaries themselves are synced)
    assert counts["summarized"] == 12 and counts["error"] == 0 and counts["pending"] == 0
    assert counts["synced"] == len(receipts) + len(memos)


def test_bench_posts_a_day_of_orders_as_summaries_in_few_round_trips() -> None:
    from qbwc_bridge.tools import bench_summaries

    figures = bench_summaries.run(300)
    assert bench_summaries.problems(figures) == []
    assert figures["round_trips"] <= bench_summaries.MAX_ROUND_TRIPS
    assert figures["summaries"] == 6 and figures["orders_summarized"] == 300
    assert figures["orders_on_the_next_day_in_utc"] > 0  # counted in the New York day
    worse = {**figures, "round_trips": 6, "totals_match": False}
    assert len(bench_summaries.problems(worse)) == 2


@pytest.mark.parametrize("session", SESSIONS, ids=[s.stem for s in SESSIONS])
def test_every_recorded_session_replays_green(session: Path) -> None:
    result = _cli("replay", str(session))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no differences" in result.stdout


def test_replay_detects_a_changed_request(tmp_path: Path) -> None:
    session = json.loads(SESSIONS[0].read_text())
    exchange = session["exchanges"][1]
    assert "<RefNumber>1001</RefNumber>" in exchange["request"]
    exchange["request"] = exchange["request"].replace(
        "<RefNumber>1001</RefNumber>", "<RefNumber>1001X</RefNumber>", 1
    )
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(session))
    result = _cli("replay", str(changed))
    assert result.returncode == 1
    assert "exchange 2: the request differs" in result.stdout
    assert "-" in result.stdout and "1001X" in result.stdout


def test_replay_of_captured_web_connector_calls() -> None:
    folder = require_oracle("soap", "consolibyte-2008-log")
    result = _cli("replay", str(folder))
    assert result.returncode == 0, result.stdout
    assert "no differences" in result.stdout


def test_simulate_against_a_running_service(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    from qbwc_bridge.services import orders as order_service

    orders = json.loads((REPO / "fixtures" / "orders" / "sample-orders.json").read_text())
    order_service.enqueue(service.store, "acme", orders[:3])
    code = main(
        ["simulate", "--url", service.url, "--username", "acme-user", "--password", PASSWORD, "-q"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Synced 3 orders" in out
    assert order_service.status(service.store, "acme")["counts"]["synced"] == 3
    assert (
        main(
            [
                "simulate",
                "--url",
                service.url,
                "--username",
                "acme-user",
                "--password",
                "wrong",
                "-q",
            ]
        )
        == 1
    )


def test_without_the_tools_extra_the_service_commands_work_and_the_tools_say_what_to_install(
    tmp_path: Path,
) -> None:
    """zeep and requests are the tools' (the stand-in Web Connector's), not the service's."""
    hide_zeep = (
        "import sys; sys.modules['zeep'] = None; "
        "from qbwc_bridge.cli import main; sys.exit(main(sys.argv[1:]))"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", hide_zeep, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"},
        )

    assert run("init-db").returncode == 0
    demo = run("demo")
    assert demo.returncode == 2
    assert "pip install 'qbwc-bridge[tools]'" in demo.stderr
    assert "Traceback" not in demo.stderr
