"""Allow ``python -m qbwc_bridge``."""

from __future__ import annotations

from qbwc_bridge.cli import main

raise SystemExit(main())
