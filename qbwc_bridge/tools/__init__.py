"""Commands around the stand-ins: simulate, replay, demo, bench."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:
    from qbwc_bridge.tools import bench, demo, replay, simulate

    for module in (simulate, replay, demo, bench):
        module.add_command(sub)


def password_from(args: argparse.Namespace) -> str:
    import sys

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    return str(args.password or "")
