"""The admin console's user commands: `admin-user add/list/remove` (docs/console.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbwc_bridge.cli_support import print_json, ready_store
from qbwc_bridge.config import Settings
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import admin_users as admin_service


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not args.password:
        raise BridgeError("Give --password or --password-stdin")
    return str(args.password)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    user = admin_service.add(ready_store(settings), args.name, _password(args))
    print(f"Added admin user {user.name}: it logs in to the console at /admin/login.")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = admin_service.users(ready_store(settings))
    if args.json:
        print_json(
            [
                {"name": user.name, "created_at": user.created_at.isoformat(timespec="seconds")}
                for user in found
            ]
        )
        return 0
    if not found:
        print("No admin users yet: `qbwc-bridge admin-user add NAME --password-stdin`.")
    for user in found:
        print(f"{user.name:<30} added {user.created_at:%Y-%m-%d}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    removed = admin_service.remove(ready_store(settings), args.name)
    print(f"Removed admin user {removed.name}; its console sessions have ended.")
    return 0


def add_commands(sub: Any) -> None:
    admin_user = sub.add_parser("admin-user", help="users of the admin console (docs/console.md)")
    asub = admin_user.add_subparsers(dest="admin_user_command", required=True, metavar="ACTION")
    add = asub.add_parser("add", help="add a user who logs in to /admin")
    add.set_defaults(handler=cmd_add)
    add.add_argument("name", help="the username it logs in with")
    secret = add.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="at least 8 characters (prefer --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read it from stdin")

    listing = asub.add_parser("list", help="the admin users")
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--json", action="store_true", help="print a JSON array")

    remove = asub.add_parser("remove", help="forget a user; its sessions end at once")
    remove.set_defaults(handler=cmd_remove)
    remove.add_argument("name")
