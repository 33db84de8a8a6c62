"""The `qbwc-bridge` command line: parse arguments, call the service layer, print."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from qbwc_bridge import __version__
from qbwc_bridge.config import ENV_VARS, Settings
from qbwc_bridge.domain.jsonstream import iter_json_array
from qbwc_bridge.domain.orders import Resolution
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import runs as run_service
from qbwc_bridge.store import Store, migrate, upgrade

Handler = Callable[[argparse.Namespace, Settings], int]


def _store(settings: Settings) -> Store:
    return Store.from_url(settings.database_url)


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _progress_printer(stream: TextIO) -> Callable[[int], None] | None:
    if not stream.isatty():
        return None

    def show(count: int) -> None:
        stream.write(f"\r  {count:,} orders read")
        stream.flush()

    return show


# --- commands ------------------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    before, after = upgrade(store.database)
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
    company = company_service.add_company(_store(settings), args.name, args.username, password)
    print(f"Added company {company.name!r} (Web Connector user {company.username!r}).")
    print(
        f"Next: qbwc-bridge qwc --company {company.name} --url https://YOUR-HOST/qbwc -o {company.name}.qwc"
    )
    return 0


def cmd_company_set(args: argparse.Namespace, settings: Settings) -> int:
    company = company_service.set_company_setting(_store(settings), args.name, args.key, args.value)
    shown = "(hidden)" if args.key == "password" else getattr(company.settings, args.key)
    print(f"{company.name}: {args.key} = {shown}")
    return 0


def cmd_company_show(args: argparse.Namespace, settings: Settings) -> int:
    info = company_service.show_company(_store(settings), args.name)
    if args.json:
        _print_json(info)
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
    paired = company_service.pair_current_file(_store(settings), args.name)
    print(f"{args.name} is paired with {paired.describe()}: its next run adds orders there.")
    return 0


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    resolution = Resolution.DUPLICATE if args.as_duplicate else Resolution.ADD
    order_service.resolve(_store(settings), args.company, args.order_number, resolution)
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
        run_id, released = run_service.end_run(_store(settings), args.company, args.run)
        print(f"Run {run_id} ended; {released} order(s) back in the queue.")
        return 0
    runs = run_service.open_runs(_store(settings), args.company)
    if args.json:
        _print_json(
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
    key = company_service.new_api_key(_store(settings), args.name)
    print(key)
    print(
        "Store it now: it is not shown again. Use it as the HTTP Basic password for /api.",
        file=sys.stderr,
    )
    return 0


def cmd_enqueue(args: argparse.Namespace, settings: Settings) -> int:
    source: Any = sys.stdin.buffer if args.file == "-" else Path(args.file).open("rb")  # noqa: SIM115
    try:
        report = order_service.enqueue(
            _store(settings),
            args.company,
            iter_json_array(source),
            skip_invalid=args.skip_invalid,
            progress=_progress_printer(sys.stderr),
        )
    except order_service.NothingEnqueued as error:
        _clear_progress()
        for problem in error.problems:
            print(f"error: {problem.message}", file=sys.stderr)
        print(error.message, file=sys.stderr)
        return 1
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    _clear_progress()
    for problem in report.problems:
        print(f"skipped: {problem.message}", file=sys.stderr)
    for number in report.conflicts:
        print(
            f"conflict: order {number} is already in QuickBooks and differs from the one sent; "
            "not queued again",
            file=sys.stderr,
        )
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"Queued {report.queued}, updated {report.updated}, unchanged {report.unchanged}, "
            f"conflicts {len(report.conflicts)}, invalid {len(report.problems)}"
        )
    return 1 if report.conflicts else 0


def _clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    result = order_service.status(_store(settings), args.company)
    if args.json:
        _print_json(result)
        return 0
    print("  ".join(f"{status}: {n}" for status, n in result["counts"].items()))
    for order in result["orders"]:
        line = f"{order['order_number']:<24} {order['status']:<12} {order['txn_type']:<13} {order['qb_txn_id'] or ''}"
        print(line.rstrip())
        if order["error"]:
            print(f"    error: {order['error']}")
        for payment in order["payments"]:
            text = f"    payment {payment['reference_number'] or '-'} {payment['amount']}: {payment['status']}"
            print(text + (f" ({payment['error']})" if payment["error"] else ""))
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    numbers = order_service.retry(_store(settings), args.company, args.order_numbers)
    print(
        f"{len(numbers)} order{'s' if len(numbers) != 1 else ''} back in the queue"
        + (": " + ", ".join(numbers[:20]) if numbers else "")
    )
    return 0


def cmd_product_updates(args: argparse.Namespace, settings: Settings) -> int:
    result = inventory_service.product_updates(
        _store(settings), args.company, args.since, args.limit
    )
    if args.json:
        _print_json(result["rows"])
        return 0
    for row in result["rows"]:
        print(
            f"{row['cursor']:>8}  {row['sku']:<40} on hand {row['quantity_on_hand']}, "
            f"on order {row['quantity_on_order']}, on sales order {row['quantity_on_sales_order']}"
        )
    print(f"next cursor: {result['next_cursor']}", file=sys.stderr)
    return 0


def cmd_inventory(args: argparse.Namespace, settings: Settings) -> int:
    inventory_service.request_inventory_now(_store(settings), args.company)
    print(f"The next Web Connector run of {args.company} will query inventory.")
    return 0


def cmd_qwc(args: argparse.Namespace, settings: Settings) -> int:
    from qbwc_bridge import qwc

    company = company_service.company(_store(settings), args.company)
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

    store = _store(settings)
    problem = migrate.schema_problem(store.database)
    if problem:
        raise BridgeError(problem)
    app = make_wsgi_app(settings, store)
    server = make_dev_server(app, args.host, args.port)
    print(
        f"qbwc-bridge {__version__} (development server) on http://{args.host}:{args.port}/qbwc "
        f"- WSDL at /qbwc?wsdl. For production use gunicorn -c deploy/gunicorn.conf.py",
        file=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


# --- parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {name}" for name in ENV_VARS)
    parser = argparse.ArgumentParser(
        prog="qbwc-bridge",
        description="Sales channel orders into QuickBooks Desktop through the Web Connector.",
        epilog=f"Environment variables (all optional):\n{env_help}\n"
        "QBWC_BRIDGE_DATABASE_URL defaults to sqlite:///qbwc_bridge.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qbwc-bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command("init-db", cmd_init_db, "create or upgrade the schema (env QBWC_BRIDGE_DATABASE_URL)")

    company = sub.add_parser("company", help="register and configure QuickBooks companies")
    csub = company.add_subparsers(dest="company_command", required=True, metavar="ACTION")
    add = csub.add_parser("add", help="register a company (a Web Connector login)")
    add.set_defaults(handler=cmd_company_add)
    add.add_argument("name")
    add.add_argument("--username", required=True, help="the Web Connector user name")
    secret = add.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="the Web Connector password (prefer --password-stdin)")
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    cset = csub.add_parser("set", help="change a setting: txn_type, customer_match, batch_max, ...")
    cset.set_defaults(handler=cmd_company_set)
    cset.add_argument("name")
    cset.add_argument("key")
    cset.add_argument("value")
    show = csub.add_parser("show", help="settings and queue counts")
    show.set_defaults(handler=cmd_company_show)
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    pair = csub.add_parser(
        "pair", help="pair the company with the company file its last run found open"
    )
    pair.set_defaults(handler=cmd_company_pair)
    pair.add_argument("name")
    pair.add_argument(
        "--accept-current-file",
        action="store_true",
        required=True,
        help="say yes: the file QuickBooks had open is this company's file from now on",
    )
    api_key = csub.add_parser("api-key", help="create a new API key for /api (shown once)")
    api_key.set_defaults(handler=cmd_company_api_key)
    api_key.add_argument("name")

    enqueue = command(
        "enqueue", cmd_enqueue, "queue JMAUser orders from a JSON array file (- = stdin)"
    )
    enqueue.add_argument("--company", required=True)
    enqueue.add_argument("file")
    enqueue.add_argument(
        "--skip-invalid",
        action="store_true",
        help="queue the valid orders of a file with invalid ones",
    )
    enqueue.add_argument("--json", action="store_true")

    status = command("status", cmd_status, "queue counts and each order's outcome")
    status.add_argument("--company", required=True)
    status.add_argument("--json", action="store_true")

    resolve = command(
        "resolve", cmd_resolve, "answer a RefNumber conflict: link the order, or add it anyway"
    )
    resolve.add_argument("--company", required=True, help="the company's name")
    resolve.add_argument("order_number", metavar="ORDER_NUMBER")
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
    runs.add_argument("--company", help="the company's name (required)")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs_sub = runs.add_subparsers(dest="run_command", metavar="ACTION")
    end = runs_sub.add_parser("end", help="end a stray run: its orders go back to the queue")
    end.add_argument("--company", help="the company's name")
    end.add_argument("--run", type=int, help="the run's id (default: the only open run)")

    retry = command("retry", cmd_retry, "put errored orders back in the queue")
    retry.add_argument("--company", required=True)
    retry.add_argument("order_numbers", nargs="*", metavar="ORDER_NUMBER")

    updates = command(
        "product-updates", cmd_product_updates, "inventory rows written from QuickBooks"
    )
    updates.add_argument("--company", required=True)
    updates.add_argument("--since", type=int, default=0, metavar="CURSOR")
    updates.add_argument("--limit", type=int, default=100000)
    updates.add_argument("--json", action="store_true")

    inventory = command("inventory", cmd_inventory, "ask for an inventory query in the next run")
    inventory.add_argument("--company", required=True)
    inventory.add_argument("--now", action="store_true", required=True)

    qwc = command("qwc", cmd_qwc, "write the .qwc file for the Web Connector")
    qwc.add_argument("--company", required=True)
    qwc.add_argument("--url", required=True, help="the service's SOAP endpoint, https://HOST/qbwc")
    qwc.add_argument("--support-url", help="a page the admin can open for help (default: the WSDL)")
    qwc.add_argument("--every", type=int, default=15, help="run every N minutes (default 15)")
    qwc.add_argument("-o", "--output", help="file to write (default: stdout)")

    serve = command("serve", cmd_serve, "run the SOAP service (development server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    _add_tool_commands(sub)
    return parser


def _add_tool_commands(sub: Any) -> None:
    """simulate, replay, demo, bench: the stand-ins and the figures."""
    from qbwc_bridge import tools

    tools.add_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings))
    except BridgeError as error:
        print(f"qbwc-bridge: {error.message}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"qbwc-bridge: {error}", file=sys.stderr)
        return 2
