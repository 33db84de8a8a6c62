"""The .qwc file: Intuit's element set and order, stable GUIDs, https outside localhost."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from oracle import require_oracle

from qbwc_bridge import qwc
from qbwc_bridge.domain.company import Company, CompanySettings
from qbwc_bridge.safexml import parse_xml

COMPANY = Company(
    id=1,
    name="acme",
    username="acme-user",
    settings=CompanySettings(),
    owner_id="{57F3B9B6-86F1-4FCC-B1FF-967DE1813D20}",
    file_id="{90A44FB7-33D9-4815-AC85-AC86A7E7D1EB}",
)
GUID = re.compile(r"^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$", re.I)


def _example_orders() -> list[list[str]]:
    """Element order of the real .qwc files that carry Scheduler/IsReadOnly and Style/AuthFlags.

    (Intuit's own SDK sample puts UserName after FileID; the Web Connector reads either.)
    """
    folder = require_oracle("qwc")
    return [
        [child.tag for child in parse_xml((folder / name).read_bytes())]
        for name in ("consolibyte-example.qwc", "flowlink-sample.qwc")
    ]


def test_elements_are_known_and_in_the_examples_order() -> None:
    root = parse_xml(qwc.qwc_document(COMPANY, "https://bridge.example.com/qbwc"))
    assert root.tag == "QBWCXML"
    ours = [child.tag for child in root]
    known = {tag for example in _example_orders() for tag in example}
    assert set(ours) <= known, set(ours) - known
    for example in _example_orders():
        shared = [tag for tag in ours if tag in example]
        assert shared == sorted(shared, key=example.index), example
    for required in (
        "AppName",
        "AppID",
        "AppURL",
        "AppDescription",
        "AppSupport",
        "UserName",
        "OwnerID",
        "FileID",
        "QBType",
        "Scheduler",
        "IsReadOnly",
    ):
        assert required in ours
    assert root.findtext("QBType") == "QBFS"
    assert root.findtext("IsReadOnly") == "false"
    assert root.findtext("Scheduler/RunEveryNMinutes") == "15"
    assert GUID.match(root.findtext("OwnerID") or "") and GUID.match(root.findtext("FileID") or "")
    assert root.findtext("UserName") == "acme-user"


def test_plain_http_is_refused_except_for_localhost() -> None:
    with pytest.raises(qwc.InsecureUrl, match="https"):
        qwc.qwc_document(COMPANY, "http://bridge.example.com/qbwc")
    assert b"http://localhost:8080/qbwc" in qwc.qwc_document(COMPANY, "http://localhost:8080/qbwc")
    with pytest.raises(qwc.InvalidUrl):
        qwc.qwc_document(COMPANY, "ftp://bridge.example.com/qbwc")


def test_special_characters_are_escaped() -> None:
    company = Company(
        **{**COMPANY.__dict__}
        if hasattr(COMPANY, "__dict__")
        else {
            "id": 1,
            "name": "A & B <Co>",
            "username": "a&b",
            "settings": CompanySettings(),
            "owner_id": COMPANY.owner_id,
            "file_id": COMPANY.file_id,
        }
    )
    root = parse_xml(qwc.qwc_document(company, "https://x.example.com/qbwc"))
    assert root.findtext("UserName") == "a&b"


def test_cli_writes_a_stable_file(tmp_path: object, sqlite_url: str) -> None:
    env = {"QBWC_BRIDGE_DATABASE_URL": sqlite_url, "PATH": ""}
    run = [sys.executable, "-m", "qbwc_bridge"]
    subprocess.run(
        [*run, "company", "add", "acme", "--username", "acme-user", "--password", "pw-123456"],
        env=env,
        check=True,
        capture_output=True,
    )
    first = subprocess.run(
        [*run, "qwc", "--company", "acme", "--url", "https://b.example.com/qbwc"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    second = subprocess.run(
        [*run, "qwc", "--company", "acme", "--url", "https://b.example.com/qbwc"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    assert first == second  # OwnerID and FileID stay the same for the company
    refused = subprocess.run(
        [*run, "qwc", "--company", "acme", "--url", "http://b.example.com/qbwc"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "https" in refused.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.evil.example/qbwc",
        "http://localhost@evil.example/qbwc",
        "http://127.0.0.1.evil.example/qbwc",
        "HTTP://bridge.example.com/qbwc",
        "http://10.0.0.5:8080/qbwc",
        "http://[fe80::1]/qbwc",
    ],
)
def test_plain_http_qwc_urls_that_only_look_local_are_refused(url: str) -> None:
    with pytest.raises(qwc.InsecureUrl):
        qwc.qwc_document(COMPANY, url)


@pytest.mark.parametrize(
    "url", ["http://LOCALHOST:8080/qbwc", "http://[::1]:8080/qbwc", "https://b.example.com/q"]
)
def test_https_and_loopback_qwc_urls_are_accepted(url: str) -> None:
    assert url.encode() in qwc.qwc_document(COMPANY, url)
