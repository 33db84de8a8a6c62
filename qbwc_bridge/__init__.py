"""qbwc-bridge: online sales channels into QuickBooks Desktop via the Web Connector."""

from __future__ import annotations

__version__ = "0.1.0"
