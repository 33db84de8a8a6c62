"""Intuit's qbXML XSD sets from the oracle, loaded once per version, for validating requests."""

from __future__ import annotations

from functools import cache

from lxml import etree
from oracle import require_oracle

from qbwc_bridge.safexml import parse_xml

SCHEMA_VERSIONS = ("12.0", "13.0", "16.0")


def qbxml_schema(version: str) -> etree.XMLSchema:
    """The XSD of ``version`` ("12.0", "13.0" or "16.0"); skips the test when absent."""
    if version not in SCHEMA_VERSIONS:
        raise ValueError(f"the oracle has qbXML schemas for {SCHEMA_VERSIONS}, not {version}")
    digits = version.replace(".", "")
    path = require_oracle("xsd", f"qbxml{digits}", f"qbxmlops{digits}.xsd")
    return _load(str(path))


@cache
def _load(path: str) -> etree.XMLSchema:
    with open(path, "rb") as handle:
        root = parse_xml(handle.read())
    tree = root.getroottree()
    tree.docinfo.URL = path  # lets xsd:include find its siblings
    return etree.XMLSchema(tree)
