"""The channel commands: `channel add/set/show/list/remove`, `pull`, `worker`, `secret-key`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbwc_bridge import console, sealing
from qbwc_bridge.cli_support import print_json, ready_store
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import SETTING_KEYS, Channel, TaskKind
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import push as push_service
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.worker.runner import Ran, Worker


def _secret(args: argparse.Namespace, name: str) -> str:
    if getattr(args, f"{name}_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    value = getattr(args, name)
    if not value:
        raise BridgeError(f"Give --{name} or --{name}-stdin")
    return str(value)


def cmd_channel_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.kind == "webhook":
        added = channel_service.add_webhook(
            ready_store(settings),
            settings,
            name=args.name,
            company=args.company,
            url=args.url,
            secret=_secret(args, "secret"),
            events=args.events,
        )
        print(
            f"Paired webhook {added.name} ({added.url}) with company {added.company}: it "
            f"receives {', '.join(added.events)} from now on, signed with its secret."
        )
        return 0
    if not args.username:
        raise BridgeError("A custom store needs --username (its API user)")
    added = channel_service.add_custom_store(
        ready_store(settings),
        settings,
        name=args.name,
        company=args.company,
        url=args.url,
        username=args.username,
        password=_secret(args, "password"),
        order_statuses=args.order_statuses,
        store_names=args.store_names,
        every_minutes=args.every_minutes,
        since=channel_service.parse_time(args.since) if args.since else None,
    )
    window = channel_service.channel_json(added)["window"]
    print(f"Paired {added.name} ({added.url}) with company {added.company}: the store said OK.")
    print(f"Its first pull reads orders modified from {window['start']} to {window['end']}.")
    print("Run `qbwc-bridge worker` (or `qbwc-bridge pull --channel NAME`) to pull.")
    return 0


def cmd_channel_set(args: argparse.Namespace, settings: Settings) -> int:
    value = _secret(args, "value") if args.key == "password" else args.value
    if value is None:
        raise BridgeError(f"Give the new value of {args.key}")
    changed = channel_service.set_setting(
        ready_store(settings), settings, args.name, args.key, value
    )
    shown = "(sealed)" if args.key == "password" else value
    print(f"{changed.name}: {args.key} = {shown}")
    return 0


def _shown(store: Store, found: Channel) -> dict[str, Any]:
    with store.transaction() as tx:
        waiting = push_service.waiting_for(tx, found)
    return channel_service.channel_json(found, waiting)


def cmd_channel_show(args: argparse.Namespace, settings: Settings) -> int:
    store = ready_store(settings)
    shown = _shown(store, channel_service.channel(store, args.name))
    if args.json:
        print_json(shown)
        return 0
    _print_channel(shown)
    return 0


def _print_channel(shown: dict[str, Any]) -> None:
    print(f"{shown['name']} ({shown['kind']}, company {shown['company']}): {shown['url']}")
    state = "enabled" if shown["enabled"] else "disabled"
    print(f"  {state}, pulled every {shown['every_minutes']} minutes")
    push = shown["push"]
    print(
        f"  push: {push['waiting']} waiting, cursor {push['cursor']}, last delivery "
        f"{push['last_delivery_at'] or 'none yet'}"
        + (f"; last error: {push['last_error']}" if push["last_error"] else "")
    )
    if shown["kind"] == "webhook":
        print(f"  events: {', '.join(shown['events'])}")
        return
    print(f"  window: {shown['window']['start']} → {shown['window']['end']}")
    last = shown["last_pull"]
    if last is None:
        print("  last pull: none yet")
        return
    print(
        f"  last pull: {last['outcome']} at {last['finished_at']}: {last['received']} read, "
        f"{last['queued']} queued, {last['updated']} updated, {last['unchanged']} unchanged"
    )
    if last["error"]:
        print(f"  error: {last['error']}")
    for conflict in last["conflicts"]:
        print(f"  conflict: {conflict['order_number']}: {conflict['problem']}")
    for rejected in last["rejected"]:
        print(f"  rejected: {rejected['order_number']}: {'; '.join(rejected['problems'])}")


def cmd_channel_list(args: argparse.Namespace, settings: Settings) -> int:
    store = ready_store(settings)
    shown = [_shown(store, c) for c in channel_service.channels(store, args.company)]
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print("No channels yet: `qbwc-bridge channel add` pairs one.")
    for item in shown:
        _print_channel(item)
    return 0


def cmd_channel_remove(args: argparse.Namespace, settings: Settings) -> int:
    channel_service.remove(ready_store(settings), args.name)
    print(f"Removed channel {args.name}; the orders it queued stay in the queue.")
    return 0


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    """Pull now, in this process, under the same lease a worker would take."""
    store = ready_store(settings)
    found = channel_service.request_pull(store, args.channel)
    with console.ProgressDisplay(f"Pulling {found.name}") as shown:
        ran = Worker(store, settings).run_once(
            channel_id=found.id, progress=lambda read: shown.update(read, f"{read} orders read")
        )
    if ran is None:
        raise BridgeError(
            f"Channel {args.channel} is being pulled by a worker right now (or is disabled); "
            "`qbwc-bridge channel show` shows its last pull."
        )
    report = ran.report
    if report is not None:
        console.print_table(
            f"Pull of {found.name}: {report.outcome}",
            ("orders", "count"),
            [
                ("read", report.received),
                ("queued", report.queued),
                ("updated", report.updated),
                ("unchanged", report.unchanged),
                ("conflicts", len(report.conflicts)),
                ("rejected", len(report.rejected)),
            ],
            right=("count",),
        )
    _print_channel(_shown(store, channel_service.channel(store, args.channel)))
    return 0 if report is not None and report.complete else 1


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver what waits now, ignoring the backoff; exit 0 only when nothing is left."""
    store = ready_store(settings)
    found = channel_service.channel(store, args.channel)
    with store.transaction() as tx:
        channel_store.request(tx, found.id, TaskKind.PUSH, utcnow())
    with console.ProgressDisplay(f"Pushing to {found.name}") as shown:
        ran = Worker(store, settings).run_once(
            channel_id=found.id,
            kind=TaskKind.PUSH,
            force=True,
            progress=lambda sent: shown.update(sent, f"{sent} deliveries"),
        )
    if ran is None or ran.pushed is None:
        raise BridgeError(
            f"Channel {args.channel} is being pushed by a worker right now (or is disabled)."
        )
    report = ran.pushed
    console.print_table(
        f"Push to {found.name}",
        ("", "count"),
        [("delivered", report.delivered), ("waiting", report.waiting)],
        caption=f"last error: {report.error}" if report.error else None,
        right=("count",),
    )
    return 0 if report.complete else 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    store = ready_store(settings)
    sealing.Sealer.from_settings(settings)  # refuse to start without the key

    def ran(done: Ran) -> None:
        report = done.report
        if report is not None:
            print(
                f"{done.channel}: {done.kind.value} {report.outcome}: {report.received} read, "
                f"{report.queued} queued" + (f" ({report.error})" if report.error else ""),
                flush=True,
            )

    print("worker running; stop it with Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
    Worker(store, settings).run_forever(on_ran=ran)
    return 0


def cmd_secret_key(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "new":
        print(sealing.new_key())
        return 0
    sealer = sealing.Sealer.from_settings(settings)
    store = ready_store(settings)
    with store.transaction() as tx:
        count = channel_store.reseal_all(tx, sealer.reseal)
    print(f"Sealed {count} channel secret(s) again with the first key.")
    return 0


def add_commands(sub: Any) -> None:
    channel = sub.add_parser("channel", help="pair and configure selling channels (stores)")
    csub = channel.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    add = csub.add_parser("add", help="pair a store (it must answer OK to the credentials)")
    add.set_defaults(handler=cmd_channel_add)
    add.add_argument("name", help="a name for the channel, e.g. shop-eu")
    add.add_argument("--company", required=True, help="the company its orders go to")
    add.add_argument(
        "--kind",
        default="custom-store",
        choices=["custom-store", "webhook"],
        help="custom-store (orders in, stock out) or webhook (signed events); default %(default)s",
    )
    add.add_argument(
        "--url", required=True, help="the store's API base (https://shop/api/v1) or the receiver"
    )
    hook = add.add_mutually_exclusive_group()
    hook.add_argument("--secret", help="a webhook's signing secret (prefer --secret-stdin)")
    hook.add_argument("--secret-stdin", action="store_true", help="read the secret from stdin")
    add.add_argument(
        "--events",
        default="",
        help=(
            "a webhook's event types, comma-separated "
            "(default: stock_levels,order_outcome,quickbooks_transactions)"
        ),
    )
    add.add_argument("--username", help="the store's API user (HTTP Basic)")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="the store's API password (prefer --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    add.add_argument("--order-statuses", default="", help="only these statuses, comma-separated")
    add.add_argument("--store-names", default="", help="only these stores, comma-separated")
    add.add_argument(
        "--every-minutes", type=int, default=60, help="pull every N minutes (default %(default)s)"
    )
    add.add_argument("--since", help="first window start, ISO 8601 UTC (default: a day ago)")

    cset = csub.add_parser("set", help="change a setting: " + ", ".join(_setting_keys()))
    cset.set_defaults(handler=cmd_channel_set)
    cset.add_argument("name")
    cset.add_argument("key", choices=_setting_keys())
    cset.add_argument("value", nargs="?", help="the new value (password: or --value-stdin)")
    cset.add_argument("--value-stdin", action="store_true", help="read the value from stdin")

    show = csub.add_parser("show", help="a channel's settings, window and last pull")
    show.set_defaults(handler=cmd_channel_show)
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON (docs/channels.md)")

    listing = csub.add_parser("list", help="every channel (of one company)")
    listing.set_defaults(handler=cmd_channel_list)
    listing.add_argument("--company", help="only this company's channels")
    listing.add_argument("--json", action="store_true", help="print a JSON array")

    remove = csub.add_parser("remove", help="forget a channel (its queued orders stay)")
    remove.set_defaults(handler=cmd_channel_remove)
    remove.add_argument("name")

    pull = sub.add_parser("pull", help="pull a channel's orders now; exit 0 only if it completed")
    pull.set_defaults(handler=cmd_pull)
    pull.add_argument("--channel", required=True, help="the channel's name")

    push = sub.add_parser("push", help="deliver what waits for a channel now; exit 0 when none")
    push.set_defaults(handler=cmd_push)
    push.add_argument("--channel", required=True, help="the channel's name")

    worker = sub.add_parser("worker", help="run the channels' scheduled tasks until SIGTERM")
    worker.set_defaults(handler=cmd_worker)

    key = sub.add_parser("secret-key", help="make a key for channel secrets, or re-seal them")
    key.set_defaults(handler=cmd_secret_key)
    key.add_argument(
        "action",
        choices=["new", "rotate"],
        help="new: print a fresh key; rotate: seal every secret with the first key of "
        "QBWC_BRIDGE_SECRET_KEY",
    )


def _setting_keys() -> list[str]:
    return list(SETTING_KEYS)
