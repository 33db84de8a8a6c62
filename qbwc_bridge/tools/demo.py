"""`qbwc-bridge demo`: the newcomer's first run, end to end, on a throwaway SQLite database."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbwc_bridge import __version__, console
from qbwc_bridge.config import Settings
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.demo_company import demo_quickbooks
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.simulator.webconnector import WebConnector
from qbwc_bridge.store import Database, upgrade
from qbwc_bridge.tools.simulate import describe
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ORDERS = REPO / "fixtures" / "orders" / "sample-orders.json"
COMPANY, USERNAME, PASSWORD = "demo", "demo", "demo-password"
# The stand-in QuickBooks lacks this item, so one order shows what an error looks like.
MISSING_ITEM = "WIDGET-BLUE"
# ... and already holds an invoice for this order, so the duplicate check has something to find.
ALREADY_IN_QUICKBOOKS = "1006"
# The posting rules' settings --daily-summary and --create-missing-items set.
DEMO_TIMEZONE = "America/New_York"
DEMO_INCOME_ACCOUNT = "Sales"


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the first run: sample orders through a stand-in Web Connector and QuickBooks",
        description="Creates a company in a fresh SQLite database, queues the sample orders, "
        "serves the SOAP service on a free local port, runs the stand-in Web Connector against "
        "a stand-in QuickBooks, and prints what happened.",
    )
    p.add_argument("--database", default="qbwc_bridge_demo.db", help="SQLite file (recreated)")
    p.add_argument("--orders", default=str(SAMPLE_ORDERS), help="JMAUser orders JSON file")
    rules = p.add_argument_group("posting rules (docs/operations.md#posting-rules)")
    rules.add_argument(
        "--daily-summary",
        action="store_true",
        help=f"post one sales receipt (and one refunds credit memo) per day and channel, days "
        f"in {DEMO_TIMEZONE}, instead of one transaction per order",
    )
    rules.add_argument(
        "--create-missing-items",
        action="store_true",
        help=f"add SKUs QuickBooks lacks ({MISSING_ITEM}) as non-inventory items selling to "
        f"the {DEMO_INCOME_ACCOUNT!r} account, instead of an error",
    )
    p.set_defaults(handler=run)


def _step(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    database_file = Path(args.database).resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database_file}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database_file}"
    settings = Settings(database_url=url)
    orders_path = Path(args.orders)
    if not orders_path.exists():
        print(
            f"qbwc-bridge: sample orders not found at {orders_path}; pass --orders FILE",
            file=sys.stderr,
        )
        return 2
    orders = json.loads(orders_path.read_text(encoding="utf-8"), parse_float=Decimal)

    _step(f"qbwc-bridge {__version__}: creating the schema in {database_file}")
    database = Database(url)
    upgrade(database)
    store = _store(database)
    company_service.add_company(store, COMPANY, USERNAME, PASSWORD)
    for key, value in _posting_settings(args):
        company_service.set_company_setting(store, COMPANY, key, value)
        _step(f"company set {COMPANY} {key} {value}")
    report = order_service.enqueue(store, COMPANY, orders)
    _step(f"queued {report.queued} sample orders from {orders_path}")

    fake = demo_quickbooks(missing=(MISSING_ITEM,))
    first = next(o for o in orders if str(o.get("OrderNumber")) == ALREADY_IN_QUICKBOOKS)
    fake.add_invoice(
        "Existing customer (entered by hand)",
        Decimal(str(first["OrderTotal"])),
        ref_number=ALREADY_IN_QUICKBOOKS,
        memo=f"Web order {ALREADY_IN_QUICKBOOKS}, typed in by hand",
    )
    known_items = {item.full_name for item in fake.items}
    started = time.perf_counter()
    with BackgroundServer(make_wsgi_app(settings, store)) as server:
        _step(f"SOAP service listening on {server.url} (WSDL: {server.url}?wsdl)")
        _step("stand-in Web Connector: Update Selected")
        result = WebConnector(
            server.url,
            USERNAME,
            PASSWORD,
            fake,
            progress=lambda text: print(f"    {text}", file=sys.stderr, flush=True),
        ).run()
    seconds = time.perf_counter() - started
    print(file=sys.stderr)
    _summary(store, result.exchanges, seconds, describe(result))
    _posted(fake, known_items)
    _next_steps(database_file, summaries=args.daily_summary)
    store.database.dispose()
    return 0 if result.outcome == "done" else 1


def _posting_settings(args: argparse.Namespace) -> list[tuple[str, str]]:
    chosen: list[tuple[str, str]] = []
    if args.daily_summary:
        chosen += [("posting", "daily_summary"), ("timezone", DEMO_TIMEZONE)]
    if args.create_missing_items:
        chosen += [
            ("income_account", DEMO_INCOME_ACCOUNT),
            ("create_missing_items", "non_inventory"),
        ]
    return chosen


def _posted(fake: FakeQuickBooks, known_items: set[str]) -> None:
    """What QuickBooks holds after the run: the items the bridge created and the sales (a
    daily summary with its Memo)."""
    created = [item.full_name for item in fake.items if item.full_name not in known_items]
    if created:
        print("\nItems the bridge created in QuickBooks: " + ", ".join(created))
    print("\nPosted in QuickBooks:")
    for kind in ("Invoice", "SalesReceipt", "SalesOrder", "CreditMemo"):
        for txn in fake.transactions(kind):
            line = (
                f"  {kind:<12} {txn.ref_number or '':<11} {txn.customer[:28]:<28} "
                f"{txn.total:>10}  {len(txn.lines):>2} lines  {txn.memo or ''}"
            )
            print(line.rstrip())


def _next_steps(database_file: Path, *, summaries: bool = False) -> None:
    """What to try next, as commands that work from the current folder."""
    try:
        shown = database_file.relative_to(Path.cwd())
    except ValueError:
        shown = database_file
    command = console.invocation()
    listing = f"  {command} summaries --company {COMPANY}           # the daily summaries\n"
    print(
        "\nNext, from this folder:\n"
        f"  export QBWC_BRIDGE_DATABASE_URL={shlex.quote(f'sqlite:///{shown}')}\n"
        f"  {command} status --company {COMPANY} --all        # every order\n"
        f"  {command} product-updates --company {COMPANY}     # the inventory rows\n"
        f"{listing if summaries else ''}"
        "Then the README's 'Running it for real' connects a real QuickBooks."
    )


def _store(database: Database) -> Any:
    from qbwc_bridge.store import Store

    return Store(database)


def _summary(store: Any, round_trips: int, seconds: float, run_line: str) -> None:
    status = order_service.status(store, COMPANY)
    updates = inventory_service.product_updates(store, COMPANY, 0, 100000)["rows"]
    counts = status["counts"]
    payments = [p for o in status["orders"] for p in o["payments"]]
    rows = [
        ("orders synced", counts["synced"]),
        ("orders in daily summaries", counts["summarized"]),
        ("duplicates skipped (already in QuickBooks)", counts["duplicate"]),
        ("orders with errors", counts["error"]),
        ("payments synced", sum(p["status"] == "synced" for p in payments)),
        ("round trips", round_trips),
        ("product_updates rows", len(updates)),
        ("wall time", f"{seconds:.1f} s"),
    ]
    console.print_table("Demo summary", ("", "count"), rows, right=("count",))
    print(f"Web Connector: {run_line}")
    print("\nOrders:")
    for order in status["orders"]:
        line = f"  {order['order_number']:<22} {order['txn_type']:<13} {order['status']:<10} {order['qb_txn_id'] or ''}"
        print(line.rstrip())
        if order["error"]:
            print(f"      error: {order['error']}")
