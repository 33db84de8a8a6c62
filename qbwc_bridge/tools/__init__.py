"""Commands around the stand-ins: simulate, replay, demo, bench."""

from __future__ import annotations

import argparse
from typing import Any

TOOL_COMMANDS = {
    "simulate": "run the stand-in Web Connector against a running service",
    "replay": "replay a recorded qbXML session against the service",
    "demo": "the first run: embedded SQLite, sample orders, stand-ins, a summary",
    "bench": "measure the service's speed figures",
}
# What the tools need beyond the service itself (pyproject.toml's "tools" extra).
TOOL_PACKAGES = frozenset({"zeep", "requests"})


def add_commands(sub: Any) -> None:
    try:
        from qbwc_bridge.tools import bench, demo, replay, simulate
    except ModuleNotFoundError as error:
        if error.name not in TOOL_PACKAGES:
            raise
        for name, help_text in TOOL_COMMANDS.items():
            p = sub.add_parser(name, help=f"{help_text} (needs the tools extra)")
            p.set_defaults(handler=_needs_tools(str(error.name)))
        return
    for module in (simulate, replay, demo, bench):
        module.add_command(sub)


def _needs_tools(missing: str) -> Any:
    def handler(args: argparse.Namespace, settings: object) -> int:
        from qbwc_bridge.errors import BridgeError

        raise BridgeError(
            f"This command drives the service as the Web Connector does and needs {missing}: "
            "install the tools with `pip install 'qbwc-bridge[tools]'` "
            "(from a checkout: `pip install -e '.[tools]'`)."
        )

    return handler


def password_from(args: argparse.Namespace) -> str:
    import sys

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    return str(args.password or "")
