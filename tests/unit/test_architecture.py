"""Rules of the house that import-linter cannot see (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "qbwc_bridge"
PARSING_CALLS = {"fromstring", "parse", "XMLParser", "XML", "iterparse", "fromstringlist"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_only_the_hardened_parser_makes_lxml_parse() -> None:
    offenders = []
    for path in modules():
        if path == PACKAGE / "safexml.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in PARSING_CALLS
                and isinstance(node.value, ast.Name)
                and node.value.id == "etree"
            ):
                offenders.append(f"{path.relative_to(REPOSITORY)}:{node.lineno} etree.{node.attr}")
    assert offenders == []


def test_the_scan_finds_a_parse_call() -> None:
    """The check above would see one: it reads the parser module's own call."""
    source = (PACKAGE / "safexml.py").read_text(encoding="utf-8")
    assert "etree.fromstring" in source


def test_every_document_the_code_cites_is_in_the_repository() -> None:
    cited = set()
    for path in [*modules(), *sorted((REPOSITORY / "tests").rglob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        cited |= set(re.findall(r"\b((?:docs/)?[\w.-]+\.md)\b", text))
    missing = sorted(
        name
        for name in cited
        if not (REPOSITORY / name).exists() and not (REPOSITORY / "docs" / name).exists()
    )
    assert missing == []
