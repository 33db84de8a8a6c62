"""`qbwc-bridge simulate`: the stand-in Web Connector and QuickBooks against a running service."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbwc_bridge.config import Settings
from qbwc_bridge.simulator.demo_company import demo_quickbooks
from qbwc_bridge.simulator.quickbooks import LatencyModel
from qbwc_bridge.simulator.webconnector import RunReport, WebConnector


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="run the stand-in Web Connector + QuickBooks against a running service",
        description="Drive a running qbwc-bridge over HTTP exactly as the QuickBooks Web "
        "Connector does, against an in-memory stand-in QuickBooks holding the demo items.",
    )
    p.add_argument("--url", default="http://127.0.0.1:8080/qbwc", help="the service's /qbwc URL")
    p.add_argument("--username", required=True, help="the company's Web Connector user name")
    secret = p.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="its Web Connector password")
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    p.add_argument("--runs", type=int, default=1, help="Web Connector runs against the same books")
    p.add_argument(
        "--qbxml-version", default="13.0", help="highest qbXML version QuickBooks speaks"
    )
    p.add_argument(
        "--missing-item",
        action="append",
        default=[],
        metavar="SKU",
        help="leave this item out of the stand-in QuickBooks (repeatable)",
    )
    p.add_argument(
        "--seconds-per-round-trip",
        type=float,
        default=0.0,
        help="modelled QuickBooks time per message (reported, not slept)",
    )
    p.add_argument(
        "--seconds-per-request",
        type=float,
        default=0.0,
        help="modelled QuickBooks time per request (reported, not slept)",
    )
    p.add_argument(
        "--lose-response-after",
        type=int,
        default=0,
        metavar="N",
        help="apply the N-th message but lose its response",
    )
    p.add_argument("--unreachable", action="store_true", help="QuickBooks cannot be started")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print no line per exchange, only the outcome"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from qbwc_bridge.tools import password_from

    fake = demo_quickbooks(
        missing=tuple(args.missing_item),
        max_version=args.qbxml_version,
        latency=LatencyModel(args.seconds_per_round_trip, args.seconds_per_request),
    )
    fake.unreachable = args.unreachable
    if args.lose_response_after:
        fake.lose_response_after(args.lose_response_after)
    password = password_from(args)
    say = None if args.quiet else (lambda text: print(f"  {text}", file=sys.stderr))
    reports = []
    for number in range(1, args.runs + 1):
        print(f"Web Connector run {number} against {args.url}", file=sys.stderr)
        report = WebConnector(args.url, args.username, password, fake, progress=say).run()
        reports.append(report)
        print(describe(report))
    print(
        f"QuickBooks now holds {len(fake.customers)} customers, {len(fake.invoices())} invoices, "
        f"{len(fake.sales_receipts())} sales receipts, {len(fake.sales_orders())} sales orders, "
        f"{len(fake.credit_memos())} credit memos, {len(fake.payments)} payments; "
        f"modelled QuickBooks time {fake.modelled_seconds:.1f} s"
    )
    return 0 if all(r.outcome in ("done", "nothing-to-do") for r in reports) else 1


def describe(report: RunReport) -> str:
    """One line the way the Web Connector's status column reads."""
    if report.outcome == "auth-failed":
        return "Authentication failed: check the username and password."
    if report.outcome == "nothing-to-do":
        return "No data exchange required."
    if report.outcome == "busy":
        return "The service is busy with another run of this company; try again later."
    parts = [f"{report.outcome}: {report.exchanges} round trips"]
    if report.close_message:
        parts.append(report.close_message)
    if report.last_error and report.outcome != "done":
        parts.append(f"last error: {report.last_error}")
    if report.failure:
        parts.append(f"failure: {report.failure}")
    return "; ".join(parts)
