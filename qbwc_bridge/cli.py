"""The `qbwc-bridge` command line: parse arguments, call the service layer, print."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qbwc_bridge import (
    __version__,
    cli_admin,
    cli_api,
    cli_channels,
    cli_exports,
    cli_posting,
    console,
    sealing,
)
from qbwc_bridge.cli_support import COMPANY_HELP, print_json, ready_store
from qbwc_bridge.config import ENV_VARS, Settings
from qbwc_bridge.domain.company import SETTING_MEANINGS, CompanySettings
from qbwc_bridge.domain.jsonstream import iter_json_array
from qbwc_bridge.domain.orders import OrderStatus, Resolution
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import runs as run_service
from qbwc_bridge.store import Store, upgrade

Handler = Callable[[argparse.Namespace, Settings], int]


def _store(settings: Settings) -> Store:
    """The store as it is, for init-db, which creates or upgrades its schema."""
    return Store.from_url(settings.database_url)


# --- commands ------------------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    before, after = upgrade(store.database)
    key_file = sealing.create_key_file(settings)
    if key_file is not None:
        print(
            f"Created {key_file} (the key that seals channel secrets; back it up with the database)"
        )
    where = settings.database_url.split("@")[-1]
    if before == after:
        print(f"Schema is up to date (revision {after}) in {where}")
    else:
        print(f"Schema upgraded from {before or 'empty'} to {after} in {where}")
    return 0


def cmd_company_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        raise BridgeError("Give --password or --password-stdin")
    company = company_service.add_company(ready_store(settings), args.name, args.username, password)
    print(f"Added company {company.name!r} (Web Connector user {company.username!r}).")
    print(
        f"Next: {console.invocation()} qwc --company {company.name} "
        f"--url https://YOUR-HOST/qbwc -o {company.name}.qwc"
    )
    return 0


def cmd_company_set(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        if args.key != "password" or args.value is not None:
            raise BridgeError("--password-stdin goes with the key password and no value")
        value = sys.stdin.readline().rstrip("\r\n")
    elif args.value is None:
        hint = " (or --password-stdin)" if args.key == "password" else ""
        raise BridgeError(f"Give the new value of {args.key}{hint}")
    else:
        value = args.value
    company = company_service.set_company_setting(ready_store(settings), args.name, args.key, value)
    shown = "(hidden)" if args.key == "password" else getattr(company.settings, args.key)
    print(f"{company.name}: {args.key} = {shown}")
    return 0


def cmd_company_show(args: argparse.Namespace, settings: Settings) -> int:
    info = company_service.show_company(ready_store(settings), args.name)
    if args.json:
        print_json(info)
        return 0
    for key in (
        "name",
        "username",
        "owner_id",
        "file_id",
        "qbxml_version",
        "web_connector_version",
    ):
        print(f"{key:>24}: {info[key] if info[key] is not None else '-'}")
    for key in ("paired_file", "open_file"):
        file = info[key]
        shown = " ".join(f"{k}={v!r}" for k, v in file.items() if v) if file else "- (not yet)"
        print(f"{key:>24}: {shown}")
    for key, value in info["settings"].items():
        print(f"{key:>24}: {value}")
    print(f"{'orders':>24}: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    return 0


def cmd_company_pair(args: argparse.Namespace, settings: Settings) -> int:
    paired = company_service.pair_current_file(ready_store(settings), args.name)
    print(f"{args.name} is paired with {paired.describe()}: its next run adds orders there.")
    return 0


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    resolution = Resolution.DUPLICATE if args.as_duplicate else Resolution.ADD
    order_service.resolve(ready_store(settings), args.company, args.order_number, resolution)
    if resolution is Resolution.DUPLICATE:
        print(
            f"Order {args.order_number} will be linked to the transaction QuickBooks has with "
            "its RefNumber at the next run (and its payments checked against it)."
        )
    else:
        print(f"Order {args.order_number} will be added at the next run.")
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    if not args.company:
        raise BridgeError("Name the company: qbwc-bridge runs --company NAME [end]")
    if getattr(args, "run_command", None) == "end":
        run_id, released = run_service.end_run(ready_store(settings), args.company, args.run)
        print(f"Run {run_id} ended; {released} order(s) back in the queue.")
        return 0
    runs = run_service.open_runs(ready_store(settings), args.company)
    if args.json:
        print_json(
            [
                {
                    "id": r.id,
                    "company": r.company,
                    "started_at": r.created_at.isoformat(),
                    "last_seen_at": r.last_seen_at.isoformat(),
                    "expires_at": r.expires_at.isoformat(),
                    "request_with_quickbooks_since": r.in_flight_since.isoformat()
                    if r.in_flight_since
                    else None,
                }
                for r in runs
            ]
        )
        return 0
    if not runs:
        print(f"No open run for {args.company}.")
    for r in runs:
        waiting = (
            f"a request with QuickBooks since {r.in_flight_since:%H:%M:%S}"
            if r.in_flight_since
            else "no request with QuickBooks"
        )
        print(
            f"run {r.id}: started {r.created_at:%Y-%m-%d %H:%M:%S}, last call "
            f"{r.last_seen_at:%H:%M:%S}, {waiting}; ends by itself at {r.expires_at:%H:%M:%S} UTC"
        )
    return 0


def cmd_company_api_key(args: argparse.Namespace, settings: Settings) -> int:
    key = company_service.new_api_key(ready_store(settings), args.name)
    print(key)
    print(
        "Store it now: it is not shown again. Use it as the HTTP Basic password for /api.",
        file=sys.stderr,
    )
    return 0


def cmd_enqueue(args: argparse.Namespace, settings: Settings) -> int:
    store = ready_store(settings)
    source: Any = sys.stdin.buffer if args.file == "-" else Path(args.file).open("rb")  # noqa: SIM115
    size = _file_size(source)
    started = time.perf_counter()
    try:
        with console.ProgressDisplay("Queueing orders", total=size) as shown:

            def progress(count: int) -> None:
                shown.update(source.tell() if size else count, f"{count:,} orders read")

            report = order_service.enqueue(
                store,
                args.company,
                iter_json_array(source),
                skip_invalid=args.skip_invalid,
                progress=progress,
            )
    except order_service.NothingEnqueued as error:
        for problem in error.problems:
            print(f"error: {problem.message}", file=sys.stderr)
        message = f"{error.message} Fix the orders, or pass --skip-invalid to queue the valid ones."
        print(message, file=sys.stderr)
        if args.json:
            print_json(
                {
                    **order_service.EnqueueReport().as_dict(),
                    "errors": [problem.as_dict() for problem in error.problems],
                    "error": message,
                }
            )
        return 1
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    seconds = time.perf_counter() - started
    for problem in report.problems:
        print(f"skipped: {problem.message}", file=sys.stderr)
    for number in report.conflicts:
        print(
            f"conflict: order {number} is already in QuickBooks and differs from the one sent; "
            "not queued again",
            file=sys.stderr,
        )
    if args.json:
        print_json(report.as_dict())
    else:
        _enqueue_table(report, seconds, "stdin" if args.file == "-" else Path(args.file).name)
        print(
            f"Queued {report.queued}, updated {report.updated}, unchanged {report.unchanged}, "
            f"conflicts {len(report.conflicts)}, invalid {len(report.problems)}"
        )
    return 1 if report.conflicts else 0


def _file_size(source: Any) -> int | None:
    """The size of a regular file being read (for the progress bar); None for a pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        info = os.fstat(source.fileno())
        if info.st_size and source.seekable():
            return info.st_size
    return None


def _enqueue_table(report: order_service.EnqueueReport, seconds: float, source: str) -> None:
    rate = f", {report.seen / seconds:,.0f} orders/s" if seconds > 0 and report.seen else ""
    console.print_table(
        f"Orders from {source}",
        ("outcome", "orders", "meaning"),
        [
            ("queued", report.queued, "new: the next Web Connector run adds them"),
            ("updated", report.updated, "replaced a changed order still pending or in error"),
            ("unchanged", report.unchanged, "already queued exactly so: nothing to do"),
            (
                "conflicts",
                len(report.conflicts),
                "already in QuickBooks and sent changed: not queued again",
            ),
            ("invalid", len(report.problems), "skipped (--skip-invalid); each named on stderr"),
        ],
        caption=f"{report.seen:,} orders read in {seconds:.1f} s{rate}",
        right=("orders",),
    )


# What `status` calls the orders of each status in its listing.
_STATUS_HEADINGS = {
    OrderStatus.PENDING: "waiting for a Web Connector run",
    OrderStatus.IN_PROGRESS: "in a Web Connector run now",
    OrderStatus.SYNCED: "synced",
    OrderStatus.DUPLICATE: "already in QuickBooks (linked, not added again)",
    OrderStatus.ERROR: "in error (each says what to do; `retry` puts them back in the queue)",
    OrderStatus.UNPOSTED: "unposted: deleted from QuickBooks (`retry` adds them again)",
    OrderStatus.SUMMARIZED: "in a daily summary (its TxnID is the summary's)",
    OrderStatus.CANCELLED: "cancelled by its channel before it reached QuickBooks",
}
STATUS_LIMIT = 20


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    wanted = OrderStatus(args.status) if args.status else None
    if args.json:
        # Without --status or --limit: every order, the shape docs/operations.md documents.
        print_json(
            order_service.status(
                ready_store(settings), args.company, order_status=wanted, limit=args.limit
            )
        )
        return 0
    if wanted is None and not args.all:
        wanted = OrderStatus.ERROR
    limit = None if args.all else (args.limit or STATUS_LIMIT)
    result = order_service.status(
        ready_store(settings), args.company, order_status=wanted, limit=limit
    )
    counts: dict[str, int] = result["counts"]
    print("  ".join(f"{status}: {n}" for status, n in counts.items()))
    matching = counts[wanted.value] if wanted else sum(counts.values())
    if not matching:
        what = (
            f"No order is {_STATUS_HEADINGS.get(wanted, wanted.value).split(' (')[0]}"
            if wanted
            else "No order"
        )
        print(f"{what}. (`status --all` lists every order, `--status STATUS` one status.)")
        return 0
    heading = _STATUS_HEADINGS.get(wanted, wanted.value) if wanted else "every status"
    print(f"\n{matching} order{'s' if matching != 1 else ''} {heading}:")
    for order in result["orders"]:
        line = f"{order['order_number']:<24} {order['status']:<12} {order['txn_type']:<13} {order['qb_txn_id'] or ''}"
        print(line.rstrip())
        if order["error"]:
            print(f"    error: {order['error']}")
        for payment in order["payments"]:
            text = f"    payment {payment['reference_number'] or '-'} {payment['amount']}: {payment['status']}"
            print(text + (f" ({payment['error']})" if payment["error"] else ""))
    if len(result["orders"]) < matching:
        print(
            f"Showing {len(result['orders'])} of {matching}: --limit N for more, --all for "
            "every order, --json for all of them as JSON."
        )
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    report = order_service.retry_orders(ready_store(settings), args.company, args.order_numbers)
    numbers = report.retried
    more = ", …" if len(numbers) > 20 else ""
    print(
        f"{len(numbers)} order{'s' if len(numbers) != 1 else ''} back in the queue"
        + (": " + ", ".join(numbers[:20]) + more if numbers else "")
    )
    for why in report.refused.values():
        print(f"not retried: {why}", file=sys.stderr)
    return 1 if report.refused else 0


def cmd_product_updates(args: argparse.Namespace, settings: Settings) -> int:
    result = inventory_service.product_updates(
        ready_store(settings), args.company, args.since, args.limit
    )
    if args.json:
        print_json(result["rows"])
        return 0
    for row in result["rows"]:
        print(
            f"{row['cursor']:>8}  {row['sku']:<40} on hand {row['quantity_on_hand']}, "
            f"on order {row['quantity_on_order']}, on sales order {row['quantity_on_sales_order']}"
        )
    print(f"next cursor: {result['next_cursor']}", file=sys.stderr)
    return 0


def cmd_inventory(args: argparse.Namespace, settings: Settings) -> int:
    inventory_service.request_inventory_now(ready_store(settings), args.company)
    print(f"The next Web Connector run of {args.company} will query inventory.")
    return 0


def cmd_qwc(args: argparse.Namespace, settings: Settings) -> int:
    from qbwc_bridge import qwc

    company = company_service.company(ready_store(settings), args.company)
    document = qwc.qwc_document(
        company, args.url, support_url=args.support_url or "", run_every_minutes=args.every
    )
    if args.output and args.output != "-":
        Path(args.output).write_bytes(document)
        print(
            f"Wrote {args.output}: add it in the Web Connector (Add an application), "
            "then enter the company's password there.",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(document.decode("utf-8"))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qbwc_bridge.web.app import make_wsgi_app
    from qbwc_bridge.web.devserver import make_dev_server

    app = make_wsgi_app(settings, ready_store(settings))
    server = make_dev_server(app, args.host, args.port)
    port = server.server_address[1]  # the one chosen, with --port 0
    print(
        f"qbwc-bridge {__version__} (development server) on http://{args.host}:{port}/qbwc "
        f"- WSDL at /qbwc?wsdl. For production use gunicorn -c deploy/gunicorn.conf.py",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


# --- parser --------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless it says already what happens
    without the option or the option is required: a flag's default is off, an unset
    value's none, any other value is shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or action.required
            or getattr(action, _ONE_OF_REQUIRED, False)
            or action.default is argparse.SUPPRESS
            or "default" in text.lower()
        ):
            return text
        if action.nargs == 0 and action.default is False:
            return f"{text} (default: off)"
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


# Marks an option of a required group (--password or --password-stdin): it has no default.
_ONE_OF_REQUIRED = "qbwc_bridge_one_of_required"


def _environment_help() -> str:
    defaults = Settings()
    service = "\n".join(
        f"  {name} ({getattr(defaults, field) or 'not set'})" for name, field in ENV_VARS.items()
    )
    return (
        "Environment variables, with their defaults (docs/operations.md says what each does):\n"
        f"{service}\n"
        "Read by deploy/gunicorn.conf.py:\n"
        "  QBWC_BRIDGE_BIND (127.0.0.1:8080), QBWC_BRIDGE_WORKERS (2 per core),\n"
        "  QBWC_BRIDGE_THREADS (16), QBWC_BRIDGE_ACCESS_LOG (not set: no access log),\n"
        "  QBWC_BRIDGE_FORWARDED_ALLOW_IPS (127.0.0.1)\n\n"
        "Start: qbwc-bridge init-db, then qbwc-bridge company add NAME --username U "
        "--password-stdin.\n`qbwc-bridge COMMAND --help` describes each command."
    )


def _company_set_help() -> str:
    defaults = CompanySettings().as_dict()
    keys = [
        (key, f"{SETTING_MEANINGS.get(key, '')} (default: {defaults[key]})")
        for key in CompanySettings.names()
    ]
    keys.append(("password", "the Web Connector password, at least 8 characters"))
    lines = [
        textwrap.fill(meaning, width=79, initial_indent=f"  {key:<15} ", subsequent_indent=" " * 18)
        if len(key) < 16
        else f"  {key}\n"
        + textwrap.fill(meaning, width=79, initial_indent=" " * 18, subsequent_indent=" " * 18)
        for key, meaning in keys
    ]
    return "Keys:\n" + "\n".join(lines)


def _whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
        return value

    return parse


JSON_HELP = "print JSON instead (its shape: docs/operations.md)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qbwc-bridge",
        description="Sales channel orders into QuickBooks Desktop through the Web Connector. "
        "Every command but init-db, demo, simulate, replay and bench works on the database of "
        "QBWC_BRIDGE_DATABASE_URL, whose schema init-db creates.",
        epilog=_environment_help(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qbwc-bridge {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log qbwc-bridge's own debug messages"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command(
        "init-db",
        cmd_init_db,
        "create or upgrade the schema of the database QBWC_BRIDGE_DATABASE_URL names "
        "(default sqlite:///qbwc_bridge.db, in the current folder); safe to run again",
    )

    company = sub.add_parser("company", help="register and configure QuickBooks companies")
    csub = company.add_subparsers(dest="company_command", required=True, metavar="ACTION")
    add = csub.add_parser(
        "add",
        help="register a company (a Web Connector login)",
        description="Register a QuickBooks company: one Web Connector login.",
    )
    add.set_defaults(handler=cmd_company_add)
    add.add_argument("name", help="a short name for the company, e.g. acme")
    add.add_argument("--username", required=True, help="the Web Connector user name")
    secret = add.add_mutually_exclusive_group(required=True)
    secret.add_argument(
        "--password",
        help="the Web Connector password, at least 8 characters (prefer --password-stdin)",
    )
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    cset = csub.add_parser(
        "set",
        help="change a setting: txn_type, customer_match, batch_max, password, ...",
        description="Change one setting of a company (`company show NAME` shows them).",
        epilog=_company_set_help(),
    )
    cset.set_defaults(handler=cmd_company_set)
    cset.add_argument("name", help=COMPANY_HELP)
    cset.add_argument("key", help="the setting (listed below)")
    cset.add_argument(
        "value", nargs="?", help="its new value (for password, prefer --password-stdin)"
    )
    cset.add_argument(
        "--password-stdin",
        action="store_true",
        help="with the key password: read the new password from stdin",
    )
    show = csub.add_parser("show", help="settings and queue counts")
    show.set_defaults(handler=cmd_company_show)
    show.add_argument("name", help=COMPANY_HELP)
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    pair = csub.add_parser(
        "pair", help="pair the company with the company file its last run found open"
    )
    pair.set_defaults(handler=cmd_company_pair)
    pair.add_argument("name", help=COMPANY_HELP)
    pair.add_argument(
        "--accept-current-file",
        action="store_true",
        required=True,
        help="say yes: the file QuickBooks had open is this company's file from now on",
    )
    api_key = csub.add_parser("api-key", help="create a new API key for /api (shown once)")
    api_key.set_defaults(handler=cmd_company_api_key)
    api_key.add_argument("name", help=COMPANY_HELP)

    enqueue = command(
        "enqueue", cmd_enqueue, "queue JMAUser orders from a JSON array file (- = stdin)"
    )
    enqueue.add_argument("--company", required=True, help=COMPANY_HELP)
    enqueue.add_argument("file", help="a JSON array of JMAUser orders; - reads stdin")
    enqueue.add_argument(
        "--skip-invalid",
        action="store_true",
        help="queue the valid orders of a file with invalid ones (else one invalid order "
        "means none is queued)",
    )
    enqueue.add_argument("--json", action="store_true", help=JSON_HELP)

    status = command(
        "status",
        cmd_status,
        "queue counts, and the orders that need a person (in error); --all for every order",
    )
    status.add_argument("--company", required=True, help=COMPANY_HELP)
    status.add_argument(
        "--status",
        choices=[s.value for s in OrderStatus],
        help="list the orders in this status (default: error; with --all or --json: every status)",
    )
    status.add_argument(
        "--limit",
        type=_whole_number(1),
        metavar="N",
        help=f"list at most N orders (default: {STATUS_LIMIT}; with --all or --json: all)",
    )
    status.add_argument(
        "--all", action="store_true", help="list every order (of --status, if given)"
    )
    status.add_argument(
        "--json",
        action="store_true",
        help="print JSON: counts and every order, or those --status and --limit select",
    )

    resolve = command(
        "resolve", cmd_resolve, "answer a RefNumber conflict: link the order, or add it anyway"
    )
    resolve.add_argument("--company", required=True, help=COMPANY_HELP)
    resolve.add_argument("order_number", metavar="ORDER_NUMBER", help="the order in conflict")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--as-duplicate",
        action="store_true",
        help="the transaction QuickBooks has with this RefNumber is this order: link it",
    )
    how.add_argument(
        "--add-anyway",
        action="store_true",
        help="it is someone else's: add this order too (QuickBooks allows a repeated RefNumber)",
    )

    runs = command("runs", cmd_runs, "list a company's open Web Connector runs")
    runs.add_argument("--company", help=f"{COMPANY_HELP} (required)")
    runs.add_argument("--json", action="store_true", help="print a JSON array of the runs")
    runs_sub = runs.add_subparsers(dest="run_command", metavar="ACTION")
    end = runs_sub.add_parser("end", help="end a stray run: its orders go back to the queue")
    end.add_argument("--company", help=f"{COMPANY_HELP} (required)")
    end.add_argument("--run", type=int, help="the run's id (default: the only open run)")

    retry = command(
        "retry", cmd_retry, "put errored orders back in the queue (those named, or all)"
    )
    retry.add_argument("--company", required=True, help=COMPANY_HELP)
    retry.add_argument(
        "order_numbers",
        nargs="*",
        metavar="ORDER_NUMBER",
        help="the orders to retry (default: every order in error)",
    )

    updates = command(
        "product-updates", cmd_product_updates, "inventory rows written from QuickBooks"
    )
    updates.add_argument("--company", required=True, help=COMPANY_HELP)
    updates.add_argument(
        "--since",
        type=_whole_number(0),
        default=0,
        metavar="CURSOR",
        help="only rows changed after this cursor (the last one you read)",
    )
    updates.add_argument(
        "--limit", type=_whole_number(1), default=100000, help="print at most this many rows"
    )
    updates.add_argument("--json", action="store_true", help="print a JSON array of the rows")

    inventory = command("inventory", cmd_inventory, "ask for an inventory query in the next run")
    inventory.add_argument("--company", required=True, help=COMPANY_HELP)
    inventory.add_argument(
        "--now",
        action="store_true",
        help="in the next run (what the command does anyway; kept for scripts)",
    )

    qwc = command("qwc", cmd_qwc, "write the .qwc file for the Web Connector")
    qwc.add_argument("--company", required=True, help=COMPANY_HELP)
    qwc.add_argument("--url", required=True, help="the service's SOAP endpoint, https://HOST/qbwc")
    qwc.add_argument("--support-url", help="a page the admin can open for help (default: the WSDL)")
    qwc.add_argument("--every", type=int, default=15, help="run every N minutes")
    qwc.add_argument("-o", "--output", help="file to write (default: stdout)")

    serve = command(
        "serve",
        cmd_serve,
        "run the SOAP service (development server; production runs gunicorn, whose address "
        "QBWC_BRIDGE_BIND sets)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free)")

    cli_channels.add_commands(sub)
    cli_api.add_commands(sub)
    cli_admin.add_commands(sub)
    cli_posting.add_commands(sub)
    cli_exports.add_commands(sub)
    _add_tool_commands(sub)
    for each in _parsers(parser):
        each.formatter_class = HelpFormatter
        for group in each._mutually_exclusive_groups:
            for action in group._group_actions if group.required else ():
                setattr(action, _ONE_OF_REQUIRED, True)
    return parser


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every parser of its commands, and of theirs."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def _add_tool_commands(sub: Any) -> None:
    """simulate, replay, demo, bench: the stand-ins and the figures."""
    from qbwc_bridge import tools

    tools.add_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # -v is for qbwc-bridge's own messages: the libraries (spyne describes every type it
    # registers) stay at WARNING.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.verbose:
        logging.getLogger("qbwc_bridge").setLevel(logging.DEBUG)
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings))
    except BrokenPipeError:
        # The reader went away (`status | head -1`): stop quietly, as a Unix tool does.
        # stdout points to nowhere from here, so the interpreter's last flush cannot fail.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a tool the signal ended
    except BridgeError as error:
        print(f"qbwc-bridge: {error.message}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"qbwc-bridge: {error}", file=sys.stderr)
        return 2
