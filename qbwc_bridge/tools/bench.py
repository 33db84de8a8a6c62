"""`qbwc-bridge bench`: speed figures."""

from __future__ import annotations

from typing import Any


def add_command(sub: Any) -> None:
    return None
