"""Real Web Connector requests, byte for byte with their HTTP headers, against gunicorn."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from oracle import require_oracle
from servers import gunicorn

from qbwc_bridge.safexml import parse_xml

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://developer.intuit.com/"


def _captured_requests() -> list[Path]:
    folder = require_oracle("soap")
    return sorted(folder.glob("*/*.request.xml")) + sorted(folder.glob("*/receiveResponseXML*.xml"))


def _headers(request_file: Path) -> list[tuple[str, str]]:
    header_file = request_file.with_name(
        request_file.name.replace(".request.xml", ".request-http-headers.txt")
    )
    if header_file == request_file or not header_file.exists():
        return [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("SOAPAction", '"http://developer.intuit.com/receiveResponseXML"'),
            ("Expect", "100-continue"),
        ]
    pairs = []
    for line in header_file.read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() != "content-length":
            pairs.append((name.strip(), value.strip()))
    return pairs


def _post(url: str, body: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(
            "POST", parts.path, skip_host=any(h.lower() == "host" for h, _ in headers)
        )
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_every_captured_request_gets_a_well_formed_answer(database_url: str) -> None:
    requests = _captured_requests()
    assert len(requests) >= 15
    with gunicorn(database_url, workers=2) as url:
        for request_file in requests:
            body = request_file.read_bytes()
            operation = parse_xml(body).find(f"{{{SOAP}}}Body")[0].tag.split("}")[1]  # type: ignore[index]
            status, answer = _post(url, body, _headers(request_file))
            assert status == 200, (request_file.name, answer[:300])
            envelope = parse_xml(answer)
            result = envelope.find(
                f"{{{SOAP}}}Body/{{{TNS}}}{operation}Response/{{{TNS}}}{operation}Result"
            )
            if operation == "serverVersion":
                assert result is not None and result.text
            elif operation == "authenticate":
                assert result is not None, request_file.name
                strings = result.findall(f"{{{TNS}}}string")
                assert len(strings) >= 2
                assert strings[1].text == "nvu"  # the captured credentials are not ours
            elif operation == "receiveResponseXML":
                assert result is not None and int(result.text or "") == -1  # unknown ticket
            elif operation == "getLastError":
                assert result is not None and "not valid" in (result.text or "")
            elif operation in ("sendRequestXML",):
                assert result is None or not (result.text or "").strip()
            else:
                assert envelope.find(f"{{{SOAP}}}Body/{{{TNS}}}{operation}Response") is not None, (
                    operation
                )


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<not-closed>",
        b"\xff\xfe garbage",
    ],
)
def test_hostile_envelopes_get_a_soap_fault(database_url: str, body: bytes) -> None:
    with gunicorn(database_url, workers=1) as url:
        status, answer = _post(url, body, [("Content-Type", "text/xml; charset=utf-8")])
    assert status in (400, 500)
    assert b"Fault" in answer
    assert b"root:" not in answer
