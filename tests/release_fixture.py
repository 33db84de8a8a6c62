"""Write fixtures/releases/<version>/: a released version's database, as JSON rows.

tests/integration/test_upgrade_from_release.py loads every such directory into a schema at
that release's Alembic revision and upgrades it to head, so an upgrade is proven on the
rows a real installation holds, not only on an empty schema. The database is built by the
release's own code (companies, orders in every state, a finished and an unfinished Web
Connector run, inventory rows, failed logins), so its rows are exactly what it writes.

When a version is released, add its fixture, built from the release's checkout:

    git worktree add /tmp/release-src <release commit>
    PYTHONPATH=/tmp/release-src .venv/bin/python tests/release_fixture.py
    git worktree remove /tmp/release-src

and name the version in README.md ("Upgrading") and CHANGELOG.md. The script refuses to
overwrite a fixture: a release's database does not change afterwards.

The tests import only the row helpers below (plain SQLAlchemy); the product is imported
inside build(), so a test never runs code from the checkout a fixture was made with.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Float,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    null,
    select,
)
from sqlalchemy.types import TypeEngine

REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO / "fixtures" / "releases"
RELEASE_FILE = "release.json"  # version, revision, credentials, what was enqueued, status
DATABASE_FILE = "database.json"  # {table: [row, ...]}

Row = dict[str, Any]


# --- rows <-> JSON (also used by the tests) ------------------------------------------------


def to_json(column_type: TypeEngine[Any], value: Any) -> Any:
    """A column value as JSON: timestamps ISO 8601 in UTC, numbers as text, bytes as hex."""
    if value is None:
        return None
    if isinstance(column_type, DateTime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone
        return aware.astimezone(UTC).isoformat()
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        return format(Decimal(value), "f")
    if isinstance(column_type, LargeBinary):
        return bytes(value).hex()
    return value


def from_json(column_type: TypeEngine[Any], value: Any) -> Any:
    """The inverse of to_json; a missing JSON document is SQL NULL, not JSON null."""
    if value is None:
        return null() if isinstance(column_type, JSON) else None
    if isinstance(column_type, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        return Decimal(value)
    if isinstance(column_type, LargeBinary):
        return bytes.fromhex(value)
    return value


def reflect(conn: Connection) -> MetaData:
    """The tables as the database has them now (not as the current code declares them)."""
    found = MetaData()
    found.reflect(conn)
    return found


def data_tables(found: MetaData) -> list[Table]:
    """The product's tables, parents before children."""
    return [t for t in found.sorted_tables if t.name != "alembic_version"]


def dump_table(conn: Connection, table: Table) -> list[Row]:
    key = list(table.primary_key.columns) or list(table.columns)
    rows = conn.execute(select(table).order_by(*key)).mappings()
    return [{c.name: to_json(c.type, row[c.name]) for c in table.columns} for row in rows]


def dump(conn: Connection) -> dict[str, list[Row]]:
    return {table.name: dump_table(conn, table) for table in data_tables(reflect(conn))}


def load(conn: Connection, tables: dict[str, list[Row]]) -> None:
    """Insert the rows with their ids, parents first; PostgreSQL's id sequences follow."""
    found = reflect(conn)
    present = {t.name for t in data_tables(found)}
    assert present == set(tables), f"the fixture has {sorted(tables)}, the schema {sorted(present)}"
    for table in data_tables(found):
        for row in tables[table.name]:
            values = {name: from_json(table.c[name].type, value) for name, value in row.items()}
            conn.execute(table.insert().values(**values))
    if conn.dialect.name == "postgresql":
        for table in data_tables(found):
            for column in table.primary_key.columns:
                sequence = conn.exec_driver_sql(
                    "SELECT pg_get_serial_sequence(%s, %s)", (table.name, column.name)
                ).scalar()
                if sequence:
                    conn.exec_driver_sql(
                        f'SELECT setval(%s, COALESCE(MAX("{column.name}"), 0) + 1, false) '
                        f'FROM "{table.name}"',
                        (sequence,),
                    )


# --- building a release's database ---------------------------------------------------------

# The Web Connector credentials of the fixture's companies (test data, not secrets).
ACME: Row = {"name": "acme", "username": "acme-wc", "password": "acme-release-password"}
GLOBEX: Row = {"name": "globex", "username": "globex-wc", "password": "globex-release-password"}
MISSING_ITEM = "WIDGET-BLUE"  # absent from the stand-in QuickBooks: its orders end in error
ALREADY_IN_QUICKBOOKS = "1006"  # an invoice QuickBooks already holds: the order is a duplicate


def _variant(order: Row, number: str, *payments: str, **changes: Any) -> Row:
    """A copy of a sample order under a new number, paid with ``payments``."""
    made = copy.deepcopy(order)
    made.update(changes, OrderNumber=number)
    made["Payments"] = [
        {
            "PaymentAmount": amount,
            "CreditCardName": "Visa",
            "PaymentDate": "2024-03-08",
            "ReferenceNumber": f"PAY-{number}-{position}",
        }
        for position, amount in enumerate(payments, start=1)
    ]
    return made


def _sample_orders() -> list[Row]:
    import qbwc_bridge

    # The release's own samples when run from its checkout: they are what it accepts.
    for root in (Path(qbwc_bridge.__file__).resolve().parents[1], REPO):
        path = root / "fixtures" / "orders" / "sample-orders.json"
        if path.exists():
            orders: list[Row] = json.loads(path.read_text(encoding="utf-8"))
            return orders
    raise SystemExit("fixtures/orders/sample-orders.json not found")


def _run(engine: Any, fake: Any, company: Row, *, finish: bool = True) -> str:
    """One Web Connector run driven callback by callback; unfinished runs stop mid-way."""
    auth = engine.authenticate(company["username"], company["password"])
    assert auth.answer == "", f"{company['name']}: authenticate answered {auth.answer!r}"
    fake.begin_session()
    hcp = fake.hcp_response()
    major = int(fake.max_version.split(".")[0])
    for _ in range(500):
        request = engine.next_request(auth.ticket, hcp, r"C:\Company\Shop.QBW", "US", major, 0)
        hcp = ""
        if not request or not finish:
            break
        progress = engine.record_response(auth.ticket, fake.process(request), "", "")
        if progress < 0 or progress >= 100:
            break
    return str(engine.close(auth.ticket)) if finish else ""


def build(workdir: Path) -> tuple[Row, dict[str, list[Row]]]:
    """The release's database, built through its own API; (release.json, database.json)."""
    from qbwc_bridge import __version__

    try:
        from qbwc_bridge.services import companies as company_service
        from qbwc_bridge.services import orders as order_service
    except ImportError:  # releases before the services package had one module for both
        from qbwc_bridge import queue as company_service  # type: ignore[no-redef]
        from qbwc_bridge import queue as order_service  # type: ignore[no-redef]
    from qbwc_bridge.config import Settings
    from qbwc_bridge.engine.run import RunEngine
    from qbwc_bridge.simulator.demo_company import demo_quickbooks
    from qbwc_bridge.store import Database, Store, upgrade
    from qbwc_bridge.store.migrate import current_revision

    url = f"sqlite:///{workdir / 'release.db'}"
    database = Database(url)
    upgrade(database)
    store = Store(database)
    engine = RunEngine(store, Settings(database_url=url))
    samples = _sample_orders()
    by_number = {str(order["OrderNumber"]): order for order in samples}
    acme, globex = copy.deepcopy(ACME), copy.deepcopy(GLOBEX)

    for company in (acme, globex):
        company_service.add_company(
            store, company["name"], company["username"], company["password"]
        )
    acme["api_key"] = company_service.new_api_key(store, "acme")
    for key, value in (("txn_type", "sales_receipt"), ("batch_min", "1"), ("batch_max", "2")):
        company_service.set_company_setting(store, "globex", key, value)

    # acme: a finished run syncs the samples (one duplicate, errors for the missing item),
    # with an inventory query; then more orders arrive and wait for the next run.
    acme["orders"] = [
        *samples,
        _variant(by_number["EB-99887766"], "EB-99887767", "20.00"),
    ]
    order_service.enqueue(store, "acme", acme["orders"])
    fake = demo_quickbooks(missing=(MISSING_ITEM,))
    existing = by_number[ALREADY_IN_QUICKBOOKS]
    fake.add_invoice(
        "Existing customer (entered by hand)",
        Decimal(str(existing["OrderTotal"])),
        ref_number=ALREADY_IN_QUICKBOOKS,
    )
    acme["closed_run"] = _run(engine, fake, acme)
    later = [
        _variant(by_number["1001"], "1008", "42.80"),
        _variant(by_number["1005"], "1009", "10.00", "5.00"),
    ]
    order_service.enqueue(store, "acme", later)
    acme["orders"].extend(later)

    # globex: its Web Connector was mid-run at the upgrade: two orders leased to an open run
    # whose first message has no answer yet, three still in the queue.
    globex["orders"] = [
        _variant(by_number["1001"], f"G-{n}", "42.80", CustomerName=f"Globex Buyer {n}")
        for n in range(1, 6)
    ]
    order_service.enqueue(store, "globex", globex["orders"])
    _run(engine, demo_quickbooks(), globex, finish=False)

    # Failed logins: a mistyped password, and a locked-out guesser.
    for _ in range(2):
        engine.authenticate(globex["username"], "not-the-password", "198.51.100.23")
    for _ in range(5):
        engine.authenticate("admin", "admin", "203.0.113.9")

    for company in (acme, globex):
        company["status"] = order_service.status(store, company["name"])
    with database.engine.connect() as conn:
        tables = dump(conn)
    release = {
        "version": __version__,
        "alembic_revision": current_revision(database),
        "source_commit": _commit_of(Path(sys.modules["qbwc_bridge"].__file__ or ".")),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "companies": [acme, globex],
    }
    database.dispose()
    return release, tables


def _commit_of(package_file: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(package_file.resolve().parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="default: fixtures/releases/<version>")
    args = parser.parse_args()
    import qbwc_bridge

    print(f"qbwc-bridge {qbwc_bridge.__version__} from {qbwc_bridge.__file__}", file=sys.stderr)
    out: Path = args.out or RELEASES / qbwc_bridge.__version__
    if out.exists():
        print(f"{out} exists: a release's fixture is not rewritten", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as workdir:
        release, tables = build(Path(workdir))
    out.mkdir(parents=True)
    for name, content in ((RELEASE_FILE, release), (DATABASE_FILE, tables)):
        text = json.dumps(content, indent=1, ensure_ascii=False, default=str)
        (out / name).write_text(text + "\n", encoding="utf-8")
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in tables.items())
    print(f"wrote {out}: revision {release['alembic_revision']}; {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
