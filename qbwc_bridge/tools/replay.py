"""`qbwc-bridge replay`: play a recorded session against the service, exchange by exchange.

A session file holds the company's settings, the orders it had queued, QuickBooks' host
answer and every exchange (the qbXML the bridge sent, what QuickBooks answered). Replay
queues the same orders on a fresh database, plays QuickBooks' recorded answers back through
the stand-in Web Connector over HTTP, and reports where the bridge now asks for something
else. A folder of captured SOAP requests (``*.request.xml`` beside ``*.response.xml``) is
replayed call by call instead, comparing the shape of each answer with the recorded one.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from qbwc_bridge.config import Settings
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.demo_company import demo_quickbooks
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.simulator.webconnector import WebConnector
from qbwc_bridge.store import Database, Store, upgrade
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

FORMAT = "qbwc-bridge-session/1"
USERNAME, PASSWORD = "replay", "replay-password"


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a recorded session against the service and report differences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="a session file (.json), or a folder of captured SOAP requests")
    p.add_argument(
        "--record",
        action="store_true",
        help="instead of replaying, record a new session to PATH from --orders, "
        "against the stand-in QuickBooks",
    )
    p.add_argument("--orders", help="JMAUser orders to record a session with")
    p.add_argument(
        "--qbxml-version", default="13.0", help="(--record) QuickBooks' highest qbXML version"
    )
    p.add_argument(
        "--missing-item",
        action="append",
        default=[],
        metavar="SKU",
        help="(--record) leave this item out of the stand-in QuickBooks",
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="(--record) a company setting for the recorded run",
    )
    p.set_defaults(handler=run)


@dataclass
class Difference:
    exchange: int
    what: str
    diff: list[str] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join([f"exchange {self.exchange}: {self.what}", *self.diff])


def canonical(xml: str) -> str:
    """Pretty, comparable text of a qbXML message (whitespace between elements ignored)."""
    if not xml.strip():
        return ""
    root = parse_xml(xml)
    for element in root.iter():
        if element.text is not None and not element.text.strip() and len(element):
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    etree.indent(root)
    return etree.tostring(root, encoding="unicode")


class ReplayingQuickBooks(FakeQuickBooks):
    """Answers with the recorded responses and notes where the bridge's requests differ."""

    def __init__(self, session: dict[str, Any]) -> None:
        super().__init__(max_version=session["qbxml_version"], validate=False)
        self.session = session
        self.position = 0
        self.differences: list[Difference] = []

    def hcp_response(self) -> str:
        return str(self.session["hcp_response"])

    def process(self, request_xml: str) -> str:
        exchanges = self.session["exchanges"]
        number = self.position + 1
        if self.position >= len(exchanges):
            self.differences.append(
                Difference(
                    number,
                    "the bridge sent a request the recording does not have",
                    canonical(request_xml).splitlines()[:40],
                )
            )
            raise _Stop()
        recorded = exchanges[self.position]
        self.position += 1
        expected, actual = canonical(recorded["request"]), canonical(request_xml)
        if expected != actual:
            diff = list(
                difflib.unified_diff(
                    expected.splitlines(), actual.splitlines(), "recorded", "now", lineterm="", n=2
                )
            )
            self.differences.append(Difference(number, "the request differs", diff))
            raise _Stop()
        return str(recorded["response"])


class _Stop(Exception):
    """After the first difference, the recorded answers no longer fit."""


def replay_session(session: dict[str, Any]) -> tuple[list[Difference], int]:
    """Replay one session on a fresh database; returns the differences and exchanges played."""
    if session.get("format") != FORMAT:
        raise SystemExit(f"qbwc-bridge: not a session file (format {session.get('format')!r})")
    with tempfile.TemporaryDirectory() as folder:
        store, settings = _fresh_service(Path(folder), session)
        fake = ReplayingQuickBooks(session)
        # The first difference ends the replay.
        with BackgroundServer(make_wsgi_app(settings, store)) as server, contextlib.suppress(_Stop):
            WebConnector(server.url, USERNAME, PASSWORD, fake).run()
        store.database.dispose()
    if not fake.differences and fake.position < len(session["exchanges"]):
        fake.differences.append(
            Difference(fake.position + 1, "the bridge stopped before the recording did")
        )
    return fake.differences, fake.position


def _fresh_service(folder: Path, session: dict[str, Any]) -> tuple[Store, Settings]:
    settings = Settings(database_url=f"sqlite:///{folder / 'replay.db'}")
    database = Database(settings.database_url)
    upgrade(database)
    store = Store(database)
    company_service.add_company(store, "replay", USERNAME, PASSWORD)
    for key, value in session.get("settings", {}).items():
        company_service.set_company_setting(store, "replay", key, str(value))
    order_service.enqueue(store, "replay", session["orders"])
    return store, settings


def record_session(
    orders: list[Any], qbxml_version: str, missing: tuple[str, ...], settings: dict[str, str]
) -> dict[str, Any]:
    """Run the orders through the stand-in QuickBooks and keep every exchange."""
    fake = _RecordingQuickBooks(missing=missing, max_version=qbxml_version)
    session: dict[str, Any] = {
        "format": FORMAT,
        "qbxml_version": qbxml_version,
        "settings": settings,
        "orders": orders,
        "exchanges": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        store, service_settings = _fresh_service(Path(folder), session)
        session["hcp_response"] = fake.hcp_response()
        with BackgroundServer(make_wsgi_app(service_settings, store)) as server:
            WebConnector(server.url, USERNAME, PASSWORD, fake).run()
        store.database.dispose()
    session["exchanges"] = fake.exchanges
    return session


class _RecordingQuickBooks(FakeQuickBooks):
    def __init__(self, *, missing: tuple[str, ...], max_version: str) -> None:
        template = demo_quickbooks(missing=missing, max_version=max_version)
        self.__dict__.update(template.__dict__)
        self.exchanges: list[dict[str, str]] = []

    def process(self, request_xml: str) -> str:
        response = super().process(request_xml)
        self.exchanges.append({"request": request_xml, "response": response})
        return response


# --- folders of captured SOAP calls ----------------------------------------------------------


def _shape(xml: bytes) -> list[str]:
    """Element paths of a SOAP answer by namespace and name, without values or prefixes."""
    root = parse_xml(xml)

    def path(element: etree._Element) -> str:
        names = [
            f"{{{etree.QName(e).namespace}}}{etree.QName(e).localname}"
            for e in (element, *element.iterancestors())
        ]
        return "/".join(reversed(names))

    return [path(el) for el in root.iter() if isinstance(el.tag, str)]


def replay_soap_folder(folder: Path) -> list[Difference]:
    requests = sorted(folder.glob("*.request.xml"))
    differences: list[Difference] = []
    with tempfile.TemporaryDirectory() as tmp:
        store, settings = _fresh_service(Path(tmp), {"orders": []})
        with BackgroundServer(make_wsgi_app(settings, store)) as server:
            for number, path in enumerate(requests, 1):
                recorded = path.with_name(path.name.replace(".request.xml", ".response.xml"))
                request = urllib.request.Request(
                    server.url,
                    data=path.read_bytes(),
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    ours = answer.read()
                if recorded.exists():
                    theirs = _shape(recorded.read_bytes())
                    mine = _shape(ours)
                    if theirs != mine:
                        differences.append(
                            Difference(
                                number,
                                f"{path.name}: answer shape differs",
                                list(
                                    difflib.unified_diff(
                                        theirs, mine, "recorded", "now", lineterm=""
                                    )
                                ),
                            )
                        )
        store.database.dispose()
    print(f"{len(requests)} captured calls replayed", file=sys.stderr)
    return differences


def run(args: argparse.Namespace, _settings: Settings) -> int:
    path = Path(args.path)
    if args.record:
        if not args.orders:
            raise SystemExit("qbwc-bridge: --record needs --orders FILE")
        orders = json.loads(Path(args.orders).read_text(encoding="utf-8"), parse_float=Decimal)
        settings = dict(item.split("=", 1) for item in args.setting)
        session = record_session(orders, args.qbxml_version, tuple(args.missing_item), settings)
        path.write_text(json.dumps(session, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"Recorded {len(session['exchanges'])} exchanges to {path}")
        return 0
    if path.is_dir():
        differences = replay_soap_folder(path)
        played = None
    else:
        session = json.loads(path.read_text(encoding="utf-8"))
        differences, played = replay_session(session)
    for difference in differences:
        print(difference.render())
    if differences:
        print(f"{path}: {len(differences)} difference(s)")
        return 1
    print(f"{path}: no differences" + (f" ({played} exchanges)" if played is not None else ""))
    return 0
