"""qbXML versions: which ones the bridge builds for, and how they compare.

A request may only use elements its negotiated version knows, so every builder decision that
depends on QuickBooks' age goes through :class:`QbxmlVersion`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"\s*([0-9]{1,3})\.([0-9]{1,2})\s*")


@dataclass(frozen=True, order=True, slots=True)
class QbxmlVersion:
    """A qbXML specification version such as 13.0; ordered numerically (2.1 < 10.0)."""

    major: int
    minor: int = 0

    @classmethod
    def parse(cls, text: str) -> QbxmlVersion:
        """``"13.0"`` → ``QbxmlVersion(13, 0)``; anything else raises ValueError."""
        match = _VERSION.fullmatch(text)
        if match is None:
            raise ValueError(f"not a qbXML version: {text[:40]!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


# 5.0 (QuickBooks 2006) is the floor: it brought query iterators (paged inventory) and the
# 1023-character Email; everything the bridge sends exists there, except Addr5 (6.0), which the
# templates mark and message() drops for older versions.
SUPPORTED: tuple[QbxmlVersion, ...] = tuple(
    QbxmlVersion.parse(text)
    for text in (
        "5.0",
        "6.0",
        "7.0",
        "8.0",
        "9.0",
        "10.0",
        "11.0",
        "12.0",
        "13.0",
        "14.0",
        "15.0",
        "16.0",
    )
)
MINIMUM: QbxmlVersion = SUPPORTED[0]
HIGHEST: QbxmlVersion = SUPPORTED[-1]
