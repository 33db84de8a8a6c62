"""Commands around the stand-ins: simulate, replay, demo, bench."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    return None
