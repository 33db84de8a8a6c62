"""Stand-ins for the Windows software CI lacks: QuickBooks and the Web Connector."""

from __future__ import annotations

from qbwc_bridge.simulator.quickbooks import (
    FakeQuickBooks,
    ItemStock,
    LatencyModel,
    QuickBooksFailure,
    QuickBooksParseError,
    ResponseLost,
)
from qbwc_bridge.simulator.webconnector import RunReport, WebConnector

__all__ = [
    "FakeQuickBooks",
    "ItemStock",
    "LatencyModel",
    "QuickBooksFailure",
    "QuickBooksParseError",
    "ResponseLost",
    "RunReport",
    "WebConnector",
]
