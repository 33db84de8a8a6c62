"""A clone with nothing beside it (no Intuit schemas, no PostgreSQL) runs green, and says
in one line per group what it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Files that need both the schemas and PostgreSQL, and one that once failed without them.
SAMPLE = [
    "tests/unit/qbxml/test_qbxml_responses.py",
    "tests/unit/simulator/test_fake_quickbooks_behaviour.py",
    "tests/integration/test_order_store.py",
]


def test_without_the_schemas_or_postgresql_the_tests_skip_in_one_line_per_group(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"QBWC_BRIDGE_TEST_POSTGRES_URL", "QBWC_BRIDGE_TEST_NO_SKIPS"}
    }
    env["QBWC_ORACLE_DIR"] = str(tmp_path / "no-oracle")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *SAMPLE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    grouped = [line for line in lines if " skipped: " in line]
    assert len(grouped) == 2, grouped
    assert any("QBWC_ORACLE_DIR" in line for line in grouped)
    assert any("QBWC_BRIDGE_TEST_POSTGRES_URL" in line for line in grouped)
    assert not [line for line in lines if line.startswith("SKIPPED")]
