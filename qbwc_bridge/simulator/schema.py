"""Intuit's qbXML schemas, found and loaded once: the stand-ins reject what QuickBooks rejects."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from lxml import etree

from qbwc_bridge.safexml import parse_xml

_OPS_FILE = re.compile(r"qbxmlops(\d+)(\d)\.xsd$")
_SCHEMA_MAX_BYTES = 50 * 1024 * 1024

Version = tuple[int, int]


def find_oracle_dir() -> Path | None:
    """The oracle folder: env QBWC_ORACLE_DIR, else `shared/oracle` beside the repository root."""
    configured = os.environ.get("QBWC_ORACLE_DIR")
    if configured:
        path = Path(configured)
        return path if path.is_dir() else None
    repository_root = Path(__file__).resolve().parents[2]
    candidate = repository_root.parent / "shared" / "oracle"
    return candidate if candidate.is_dir() else None


def parse_version(text: str) -> Version:
    """`"13.0"` → (13, 0); a country prefix such as `CA` in `"CA3.0"` is ignored."""
    match = re.fullmatch(r"\s*[A-Za-z]*(\d+)(?:\.(\d+))?\s*", text)
    if match is None:
        raise ValueError(f"not a qbXML version: {text!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def schema_files(folder: Path) -> dict[Version, Path]:
    """Every `qbxmlopsNNN.xsd` under ``folder``, by the qbXML version it describes."""
    found: dict[Version, Path] = {}
    for path in sorted(folder.rglob("qbxmlops*.xsd")):
        match = _OPS_FILE.search(path.name)
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = path
    return found


@functools.cache
def load_schema(path: Path) -> etree.XMLSchema:
    """Build the schema from its ops file; its includes resolve beside it."""
    root = parse_xml(path.read_bytes(), max_bytes=_SCHEMA_MAX_BYTES)
    tree = root.getroottree()
    tree.docinfo.URL = str(path)
    return etree.XMLSchema(tree)


class QbxmlSchemas:
    """The schema set of one folder; picks the schema that fits a message's version."""

    def __init__(self, folder: Path) -> None:
        self._files = schema_files(folder)
        if not self._files:
            raise FileNotFoundError(f"no qbxmlops*.xsd under {folder}")

    @property
    def versions(self) -> tuple[Version, ...]:
        return tuple(sorted(self._files))

    def for_version(self, version: Version) -> etree.XMLSchema:
        """The oldest schema at least as new as ``version`` (the newest one if none is)."""
        newer = [known for known in sorted(self._files) if known >= version]
        chosen = newer[0] if newer else max(self._files)
        return load_schema(self._files[chosen])


def default_schemas() -> QbxmlSchemas | None:
    """The oracle's schema set, or None when the oracle is not on this machine."""
    oracle = find_oracle_dir()
    if oracle is None:
        return None
    try:
        return QbxmlSchemas(oracle / "xsd" if (oracle / "xsd").is_dir() else oracle)
    except FileNotFoundError:
        return None
