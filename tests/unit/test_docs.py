"""The user documentation names what the code reads: every environment variable in the one
configuration table, the gunicorn command line in the README, the Web Connector's answers
in the IT admin's page."""

from __future__ import annotations

import re
from pathlib import Path

from qbwc_bridge.config import ENV_VARS

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = REPO / "docs" / "operations.md"


def _configuration_table() -> list[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n### ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `QBWC_BRIDGE_")]


def test_every_environment_variable_is_in_the_one_configuration_table() -> None:
    gunicorn = set(
        re.findall(r"QBWC_BRIDGE_[A-Z_]+", (REPO / "deploy" / "gunicorn.conf.py").read_text())
    )
    rows = _configuration_table()
    named = [
        name for row in rows for name in re.findall(r"`(QBWC_BRIDGE_[A-Z_]+)`", row.split(" | ")[0])
    ]
    assert sorted(named) == sorted(set(named)), "a variable has two rows"
    missing = (set(ENV_VARS) | gunicorn) - set(named)
    assert not missing, f"not in docs/operations.md's configuration table: {sorted(missing)}"
    for row in rows:
        assert row.count(" | ") >= 2 and row.split(" | ")[2].strip(" |"), f"no meaning: {row}"


def test_the_readme_gives_the_gunicorn_command_and_links_the_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    running = readme.split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    assert "gunicorn -c deploy/gunicorn.conf.py qbwc_bridge.web.wsgi:application" in running
    assert "docs/operations.md#configuration" in readme
    assert "## Configuration" in OPERATIONS.read_text(encoding="utf-8")


def test_the_readme_names_every_variable_with_its_default() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `QBWC_BRIDGE_")]
    named = {name for row in rows for name in re.findall(r"`(QBWC_BRIDGE_[A-Z_]+)`", row)}
    gunicorn = set(
        re.findall(r"QBWC_BRIDGE_[A-Z_]+", (REPO / "deploy" / "gunicorn.conf.py").read_text())
    )
    assert (set(ENV_VARS) | gunicorn) - named == set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert len(cells) == 3 and all(cells), f"a default and a meaning: {row}"


def test_the_it_admins_page_explains_every_login_answer() -> None:
    page = (REPO / "docs" / "web-connector.md").read_text(encoding="utf-8")
    admin = page.split("## What the Web Connector shows, and what to do", 1)[1].split("\n## ", 1)[0]
    for answer in ("`none`", "`nvu`", "`busy`"):
        assert answer in admin, answer
    for subject in ("company file", "RefNumber conflict", "qbwc-bridge status", "Auto-Run"):
        assert subject in page, subject
