"""Where Intuit's WSDL and qbXML schemas live for the tests, and a clear skip when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def oracle_dir() -> Path:
    return Path(os.environ.get("QBWC_ORACLE_DIR", REPO.parent / "shared" / "oracle")).resolve()


def require_oracle(*parts: str) -> Path:
    """Path inside the oracle directory, or skip the test saying what is missing."""
    path = oracle_dir().joinpath(*parts)
    if not path.exists():
        if os.environ.get("QBWC_BRIDGE_TEST_NO_SKIPS") == "1":
            pytest.fail(f"oracle file {path} is absent, but every test must run here")
        # One reason for every such test, so the summary shows them as one group.
        pytest.skip(
            f"Intuit's WSDL and qbXML schemas are not in {oracle_dir()}: set QBWC_ORACLE_DIR "
            "to the folder holding them (CI always has it)"
        )
    return path
