"""The export commands: `quickbooks-transactions` (the feed) and `export` (ask for one)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbwc_bridge.cli_support import COMPANY_HELP, print_json, ready_store
from qbwc_bridge.config import Settings
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import exports as export_service


def cmd_quickbooks_transactions(args: argparse.Namespace, settings: Settings) -> int:
    if args.since < 0:
        raise BridgeError("--since is a cursor: 0 or more")
    result = export_service.quickbooks_transactions(
        ready_store(settings), args.company, args.since, max(args.limit, 1)
    )
    if args.json:
        print_json(result)
        return 0
    for row in result["rows"]:
        print(_line(row))
    print(f"next cursor: {result['next_cursor']}", file=sys.stderr)
    return 0


_TYPES = {2: "Invoice", 3: "CreditMemo", 4: "SalesOrder", 5: "SalesReceipt"}


def _line(row: dict[str, Any]) -> str:
    kind = _TYPES.get(row.get("OrderType", 0), "?")
    marks = []
    if row["deleted"]:
        marks.append("deleted")
    if row["created_by_bridge"]:
        marks.append(f"order {row['queued_order_number']}")
    shown = f"  ({', '.join(marks)})" if marks else ""
    return (
        f"{row['cursor']:>8}  {kind:<12} {row.get('OrderNumber', ''):<11} "
        f"{row.get('OrderDate', ''):<10}  {row.get('CustomerName', '')[:30]:<30} "
        f"{row.get('OrderTotal', ''):>12}{shown}"
    )


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    found = export_service.request_export(ready_store(settings), args.company, full=args.full)
    what = "every transaction again" if args.full else "the transactions changed since the last"
    print(
        f"The next Web Connector run of {found.name} will export {what} "
        f"({found.settings.export_transactions.replace(',', ', ')})."
    )
    return 0


def add_commands(sub: Any) -> None:
    feed = sub.add_parser(
        "quickbooks-transactions",
        help="QuickBooks' sales transactions as JMAUser orders, in change-cursor order",
        description="The export's rows (docs/export.md), those changed after --since first.",
    )
    feed.set_defaults(handler=cmd_quickbooks_transactions)
    feed.add_argument("--company", required=True, help=COMPANY_HELP)
    feed.add_argument(
        "--since",
        type=int,
        default=0,
        metavar="CURSOR",
        help="only rows changed after this cursor (the last one you read)",
    )
    feed.add_argument("--limit", type=int, default=100000, help="print at most this many rows")
    feed.add_argument("--json", action="store_true", help='print {"rows": [...], "next_cursor": N}')

    export = sub.add_parser(
        "export",
        help="export QuickBooks' transactions in the next run (--full: all of them)",
        description="Make the next Web Connector run read the transactions export_transactions "
        "names out of QuickBooks, without waiting for export_every_minutes.",
    )
    export.set_defaults(handler=cmd_export)
    export.add_argument("--company", required=True, help=COMPANY_HELP)
    export.add_argument(
        "--full",
        action="store_true",
        help="read every transaction again, not only those modified since the last export "
        "(rows that did not change keep their cursor)",
    )
