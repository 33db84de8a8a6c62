"""Requests that would cost the service more than they are worth, against gunicorn as
deployed (deploy/gunicorn.conf.py): hostile envelopes are refused in milliseconds, and
clients that stall do not keep the service from answering everyone else.

(How much CPU each hostile shape costs inside the process: tests/unit/soap/test_envelope_limits.py.)
"""

from __future__ import annotations

import http.client
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from servers import gunicorn

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://developer.intuit.com/"
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


def envelope(operation: str, inner: str = "", attributes: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        f'<{operation} xmlns="{TNS}"{attributes}>{inner}</{operation}></soap:Body></soap:Envelope>'
    ).encode()


def attributes(count: int) -> str:
    return "".join(f' a{i}="x"' for i in range(count))


# Each costs spyne or the parser seconds of CPU if it reaches them (64 000 attributes on
# one element: 6-25 s, growing with the square of their number).
FLOODS = {
    "64000-attributes-on-the-operation": envelope(
        "getLastError", "<ticket>t</ticket>", attributes(64_000)
    ),
    "64000-attributes-on-the-ticket": envelope(
        "getLastError", f"<ticket{attributes(64_000)}>t</ticket>"
    ),
    "64000-attributes-behind-a-quoted-gt": envelope(
        "authenticate", "<strUserName>u</strUserName>", ' z=">"' + attributes(64_000)
    ),
    "one-attribute-on-a-parameter": envelope("getLastError", '<ticket id="t1">t</ticket>'),
    "nine-attributes-on-the-envelope": envelope("serverVersion").replace(
        b"<soap:Envelope ", b"<soap:Envelope" + attributes(9).encode() + b" "
    ),
    "a-hundred-elements": envelope("getLastError", "<ticket>t</ticket>" + "<x/>" * 100),
    "a-million-elements": envelope("getLastError", "<x/>" * 1_000_000),
    "a-million-comments": envelope("getLastError", "<!---->" * 1_000_000),
}


def post(base: str, path: str, body: bytes, timeout: float = 10) -> tuple[int, bytes, float]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", path, body=body, headers=XML_HEADERS)
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def get(base: str, path: str, timeout: float) -> tuple[int, float]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


def test_hostile_envelopes_are_refused_before_spyne_or_the_parser_work_on_them(
    sqlite_url: str, tmp_path: Path
) -> None:
    with gunicorn(sqlite_url, workers=1, log=tmp_path / "gunicorn.log") as url:
        base = url.removesuffix("/qbwc")
        for name, body in FLOODS.items():
            status, answer, seconds = post(base, "/qbwc", body)
            assert status == 400, (name, answer[:300])
            assert b"soap:Client" in answer and b"Malformed SOAP request" in answer, name
            assert seconds < 2, (name, seconds)
        status, answer, _ = post(base, "/qbwc", envelope("serverVersion"))
        assert status == 200 and b"qbwc-bridge" in answer


def stall(base: str, path: str, *, in_headers: bool = False) -> socket.socket:
    """A client that sends the headers (or part of them) and part of a body, then nothing."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        "Content-Length: 100000\r\n\r\n<soap:Envelope xmlns:soap="
    ).encode()
    sock.sendall(head[:30] if in_headers else head)
    return sock


@contextmanager
def stalled(base: str, count: int, *, in_headers: int = 0) -> Iterator[list[socket.socket]]:
    """``count`` stalled clients of /qbwc, the first ``in_headers`` of them mid-headers."""
    sockets = [stall(base, "/qbwc", in_headers=number < in_headers) for number in range(count)]
    time.sleep(0.5)  # every one accepted and being read by now
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_stalled_clients_do_not_keep_the_service_from_answering(
    sqlite_url: str, tmp_path: Path
) -> None:
    """16 clients that stall mid-request held every sync worker until `timeout` (60 s)."""
    with gunicorn(sqlite_url, workers=2, log=tmp_path / "gunicorn.log") as url:
        base = url.removesuffix("/qbwc")
        with stalled(base, 16, in_headers=4):
            for _ in range(5):
                status, seconds = get(base, "/healthz", timeout=5)
                assert status == 200 and seconds < 1, seconds
            status, answer, seconds = post(base, "/qbwc", envelope("serverVersion"), timeout=5)
            assert status == 200 and seconds < 1, (status, seconds, answer[:200])


def test_a_stalled_body_is_cut_off_and_frees_its_thread(sqlite_url: str, tmp_path: Path) -> None:
    """Twice as many stalled uploads as threads: each gets 408 after the body timeout, and
    the service answers again (it would wait for the clients forever otherwise)."""
    env = {"QBWC_BRIDGE_THREADS": "2", "QBWC_BRIDGE_BODY_TIMEOUT_SECONDS": "1"}
    with gunicorn(sqlite_url, workers=1, extra_env=env, log=tmp_path / "gunicorn.log") as url:
        base = url.removesuffix("/qbwc")
        with stalled(base, 4) as sockets:
            answers = read_answers(sockets, timeout=10)
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), [a[:40] for a in answers]
        assert all(b"No part of the request body arrived for 1 seconds" in a for a in answers)
        status, seconds = get(base, "/healthz", timeout=5)
        assert status == 200 and seconds < 1, seconds


def read_answers(sockets: list[socket.socket], timeout: float) -> list[bytes]:
    """Each socket's answer, read as it comes; each closed once the server has closed its
    side, as clients do."""
    answers = dict.fromkeys(sockets, b"")
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=deadline - time.monotonic()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                answers[sock] += chunk
                if not chunk:
                    selector.unregister(sock)
                    sock.close()
    return [answers[sock] for sock in sockets]
