"""The posting-rule commands: `map set/list/remove/import`, `unpost`, `summaries`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qbwc_bridge.cli_support import COMPANY_HELP, print_json, ready_store
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.posting import KIND_MEANINGS, MappingKind
from qbwc_bridge.services import posting as posting_service

KINDS = [kind.value for kind in MappingKind]


def cmd_map_set(args: argparse.Namespace, settings: Settings) -> int:
    rule = posting_service.set_mapping(
        ready_store(settings), args.company, args.kind, args.source, args.target
    )
    print(
        f"{rule.kind.value} {rule.source!r} → {rule.target!r}: applies to every request "
        "built from now on (`retry` the orders it fixes)."
    )
    return 0


def cmd_map_list(args: argparse.Namespace, settings: Settings) -> int:
    rules = posting_service.list_mappings(ready_store(settings), args.company)
    if args.json:
        print_json([rule.as_dict() for rule in rules])
        return 0
    if not rules:
        print("No mappings: SKUs, payment methods and transaction types go as they are.")
        return 0
    width = max(len(rule.source) for rule in rules)
    for rule in rules:
        print(f"{rule.kind.value:<16} {rule.source:<{width}}  →  {rule.target}")
    return 0


def cmd_map_remove(args: argparse.Namespace, settings: Settings) -> int:
    posting_service.remove_mapping(ready_store(settings), args.company, args.kind, args.source)
    print(f"Removed the {args.kind} mapping of {args.source!r}.")
    return 0


def cmd_map_import(args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        count = posting_service.import_mappings(ready_store(settings), args.company, text)
    except posting_service.MappingImportFailed as error:
        for problem in error.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        raise
    print(f"{count} mapping{'s' if count != 1 else ''} stored.")
    return 0


def cmd_unpost(args: argparse.Namespace, settings: Settings) -> int:
    store = ready_store(settings)
    if args.cancel:
        report = posting_service.cancel_unpost(store, args.company, args.order_numbers)
        done = "kept (synced again)"
    else:
        report = posting_service.unpost(store, args.company, args.order_numbers)
        done = "to be unposted by the next Web Connector run"
    if report.queued:
        print(
            f"{len(report.queued)} order{'s' if len(report.queued) != 1 else ''} {done}: "
            + ", ".join(report.queued)
        )
    for why in report.refused.values():
        print(f"not done: {why}", file=sys.stderr)
    return 0 if not report.refused else 1


def cmd_summaries(args: argparse.Namespace, settings: Settings) -> int:
    rows = posting_service.list_summaries(ready_store(settings), args.company)
    if args.json:
        print_json([row.as_dict() for row in rows])
        return 0
    if not rows:
        print("No daily summaries yet (company set NAME posting daily_summary).")
        return 0
    for row in rows:
        print(
            f"{row.day.isoformat()}  {row.ref_number}  {row.channel[:20]:<20} "
            f"{'refunds' if row.kind == 'credit_memo' else 'sales':<7} {row.order_count:>5} "
            f"orders {row.total:>12}  {row.status:<10} {row.qb_txn_id or ''}".rstrip()
        )
        if row.error:
            print(f"    error: {row.error}")
    return 0


def add_commands(sub: Any) -> None:
    kinds_help = "; ".join(f"{kind.value}: {meaning}" for kind, meaning in KIND_MEANINGS.items())
    mapper = sub.add_parser(
        "map",
        help="rename SKUs, payment methods, ship methods, classes, txn-types for QuickBooks",
        description="A company's mappings: applied whenever an order becomes qbXML, so a "
        "mapping added after an error fixes the order on `retry`. Kinds: " + kinds_help,
    )
    msub = mapper.add_subparsers(dest="map_command", required=True, metavar="ACTION")
    mset = msub.add_parser("set", help="add or replace one mapping")
    mset.set_defaults(handler=cmd_map_set)
    mset.add_argument("--company", required=True, help=COMPANY_HELP)
    mset.add_argument("kind", choices=KINDS, help="what it renames")
    mset.add_argument("source", metavar="FROM", help="the channel's name (compared without case)")
    mset.add_argument("target", metavar="TO", help="QuickBooks' name (or a txn-type)")
    mlist = msub.add_parser("list", help="the company's mappings")
    mlist.set_defaults(handler=cmd_map_list)
    mlist.add_argument("--company", required=True, help=COMPANY_HELP)
    mlist.add_argument(
        "--json", action="store_true", help='print [{"kind", "from", "to"}, ...] instead'
    )
    mremove = msub.add_parser("remove", help="remove one mapping")
    mremove.set_defaults(handler=cmd_map_remove)
    mremove.add_argument("--company", required=True, help=COMPANY_HELP)
    mremove.add_argument("kind", choices=KINDS, help="what it renames")
    mremove.add_argument("source", metavar="FROM", help="the channel's name")
    mimport = msub.add_parser(
        "import",
        help="store every mapping of a CSV file (columns kind,from,to), or none of them",
    )
    mimport.set_defaults(handler=cmd_map_import)
    mimport.add_argument("--company", required=True, help=COMPANY_HELP)
    mimport.add_argument("file", metavar="FILE.csv", help="the CSV file (- = stdin)")

    unpost = sub.add_parser(
        "unpost",
        help="delete from QuickBooks what the bridge added for orders, in the next run",
        description="The next Web Connector run deletes (TxnDel) each order's payments, then "
        "its transaction — only what the bridge added, and only if unchanged in QuickBooks "
        "since; all or nothing per order. The orders become unposted; `retry` adds them "
        "again. A daily summary is named by its order number or RefNumber (see `summaries`): "
        "its transaction is deleted and its orders are queued again for a new summary.",
    )
    unpost.set_defaults(handler=cmd_unpost)
    unpost.add_argument("--company", required=True, help=COMPANY_HELP)
    unpost.add_argument("order_numbers", nargs="+", metavar="ORDER_NUMBER")
    unpost.add_argument(
        "--cancel",
        action="store_true",
        help="keep these orders instead: an undo that waits or failed is dropped",
    )

    listing = sub.add_parser(
        "summaries", help="the company's daily summaries (posting = daily_summary)"
    )
    listing.set_defaults(handler=cmd_summaries)
    listing.add_argument("--company", required=True, help=COMPANY_HELP)
    listing.add_argument("--json", action="store_true", help="print JSON instead")
