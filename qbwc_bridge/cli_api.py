"""The REST API's user commands: `api-user add/list/remove`, for the Connex-compatible API."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbwc_bridge.cli_support import print_json, ready_store
from qbwc_bridge.config import Settings
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import api_users as api_user_service
from qbwc_bridge.store.api_users import ApiUser


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not args.password:
        raise BridgeError("Give --password or --password-stdin")
    return str(args.password)


def _user_json(user: ApiUser) -> dict[str, Any]:
    return {
        "name": user.name,
        "company": user.company,
        "download_cursor": user.download_cursor,
        "created_at": user.created_at.isoformat(timespec="seconds"),
    }


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    user, channels = api_user_service.add(
        ready_store(settings), args.name, args.company, _password(args)
    )
    print(f"Added API user {user.name} of company {user.company}.")
    print(
        "It logs in with POST /api/account/login and sends orders to POST /api/orders/createorders."
    )
    if channels:
        print("Its connections (UserConnectionId):")
        for channel in channels:
            print(f"  {channel.id}  {channel.name} ({channel.kind.value})")
    else:
        print(
            "The company has no channels yet: orders need a UserConnectionId, so pair one "
            "first (`qbwc-bridge channel add`)."
        )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = api_user_service.users(ready_store(settings), args.company)
    if args.json:
        print_json([_user_json(user) for user in found])
        return 0
    if not found:
        print("No API users yet: `qbwc-bridge api-user add NAME --company C --password-stdin`.")
    for user in found:
        print(f"{user.name:<30} company {user.company}, added {user.created_at:%Y-%m-%d}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    removed = api_user_service.remove(ready_store(settings), args.name)
    print(
        f"Removed API user {removed.name} of company {removed.company}; its tokens no longer work."
    )
    return 0


def add_commands(sub: Any) -> None:
    api_user = sub.add_parser(
        "api-user", help="users of the Connex-compatible REST API (docs/http-api.md)"
    )
    asub = api_user.add_subparsers(dest="api_user_command", required=True, metavar="ACTION")
    add = asub.add_parser("add", help="add a user of a company (its name logs in)")
    add.set_defaults(handler=cmd_add)
    add.add_argument("name", help="the username it logs in with (unique across companies)")
    add.add_argument("--company", required=True, help="the company whose orders it reaches")
    secret = add.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="at least 8 characters (prefer --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read it from stdin")

    listing = asub.add_parser("list", help="the API users (of one company)")
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--company", help="only this company's users")
    listing.add_argument("--json", action="store_true", help="print a JSON array")

    remove = asub.add_parser("remove", help="forget a user; its tokens stop working at once")
    remove.set_defaults(handler=cmd_remove)
    remove.add_argument("name")
