"""The bridge's only outbound HTTP: clients of the stores and receivers a channel pairs with."""

from __future__ import annotations
