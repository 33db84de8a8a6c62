"""The SOAP service speaks Intuit's QBWebConnectorSvc contract, driven by zeep from Intuit's WSDL."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from conftest_helpers import wsdl_operations
from factories import make_order_json
from oracle import require_oracle
from soapclient import PASSWORD, Service
from sqlalchemy import select

from qbwc_bridge import __version__
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import schema, utcnow


def test_server_and_client_version(service: Service) -> None:
    assert service.soap.serverVersion() == f"qbwc-bridge {__version__}"
    assert service.soap.clientVersion("2.3.0.36") in ("", None)
    # No dialog for an old Web Connector: on an unattended PC it would hold up the runs.
    assert service.soap.clientVersion("1.5.0.0") in ("", None)


def test_authenticate_rejects_bad_logins(service: Service) -> None:
    assert service.soap.authenticate("acme-user", "wrong password")[1] == "nvu"
    assert service.soap.authenticate("nobody", PASSWORD)[1] == "nvu"


def test_authenticate_with_work_returns_a_fresh_ticket(service: Service) -> None:
    order_service.enqueue(service.store, "acme", [make_order_json()])
    ticket, answer = service.soap.authenticate("acme-user", PASSWORD)
    assert answer in ("", None)
    assert len(ticket) >= 32
    # only one run per company at a time: while QuickBooks has its request, a login is busy
    assert service.soap.sendRequestXML(ticket, "", r"C:\Books.QBW", "US", 13, 0)
    _, second = service.soap.authenticate("acme-user", PASSWORD)
    assert second == "busy"
    assert service.soap.closeConnection(ticket).startswith("Synced 0 orders")
    ticket2, again = service.soap.authenticate("acme-user", PASSWORD)
    assert again in ("", None) and ticket2 != ticket


def test_authenticate_without_work_answers_none(service: Service) -> None:
    # no orders queued and the inventory query not due for an hour: nothing to do
    with service.store.transaction() as tx:
        company = company_store.by_name(tx, "acme")
        company_store.set_inventory_due_at(tx, company.id, utcnow() + timedelta(hours=1))
    assert service.soap.authenticate("acme-user", PASSWORD)[1] == "none"
    inventory_service.request_inventory_now(service.store, "acme")
    assert service.soap.authenticate("acme-user", PASSWORD)[1] in ("", None)


def test_bad_tickets_never_raise(service: Service) -> None:
    assert service.soap.sendRequestXML("forged", "", "", "US", 13, 0) in ("", None)
    assert service.soap.receiveResponseXML("forged", "<QBXML/>", "", "") == -1
    assert "not valid" in service.soap.getLastError("forged")
    assert (
        service.soap.connectionError("forged", "0x80040408", "Could not start QuickBooks.")
        == "done"
    )
    assert service.soap.closeConnection("forged")


def test_connection_error_ends_the_run_and_keeps_orders(service: Service) -> None:
    order_service.enqueue(service.store, "acme", [make_order_json(OrderNumber="CE-1")])
    ticket, _ = service.soap.authenticate("acme-user", PASSWORD)
    assert (
        service.soap.connectionError(ticket, "0x80040408", "Could not start QuickBooks.") == "done"
    )
    assert "0x80040408" in service.soap.getLastError(ticket)
    status = order_service.status(service.store, "acme")
    assert status["counts"]["pending"] == 1
    # the company is free again
    assert service.soap.authenticate("acme-user", PASSWORD)[1] in ("", None)


def test_published_wsdl_matches_intuits(service: Service) -> None:
    intuit = wsdl_operations(
        parse_xml(
            require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl").read_bytes()
        )
    )
    with urllib.request.urlopen(service.url + "?wsdl") as response:
        ours = wsdl_operations(parse_xml(response.read()))
    assert ours == intuit


def _post_envelope(url: str, body: bytes) -> str:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        root = parse_xml(answer.read())
    result = root.find(".//{http://developer.intuit.com/}clientVersionResult")
    assert result is not None
    return result.text or ""


def test_envelopes_with_a_header_are_read_and_soap_ids_refused(service: Service) -> None:
    """The Body is found directly; a SOAP Header changes nothing about the answer. Attributes
    below the Body (SOAP-encoded ids and hrefs), which the Web Connector never sends and
    spyne would read its slow way, get a Client fault."""
    soap, tns = "http://schemas.xmlsoap.org/soap/envelope/", "http://developer.intuit.com/"
    call = (
        f'<clientVersion xmlns="{tns}"{{id}}><strVersion>{{version}}</strVersion></clientVersion>'
    )
    variants = (("", ""), ("<soap:Header/>", ""))
    for number, (header, ids) in enumerate(variants):
        version = f"2.3.0.{number}"
        envelope = (
            f'<soap:Envelope xmlns:soap="{soap}">{header}<soap:Body>'
            + call.format(id=ids, version=version)
            + "</soap:Body></soap:Envelope>"
        )
        assert _post_envelope(service.url, envelope.encode()) == "", (header, ids)
        with service.store.transaction() as tx:  # the version was read: it is kept
            kept = tx.execute(select(schema.client_versions.c.version)).scalars().all()
        assert kept == [version], (header, ids)
    with_id = (
        f'<soap:Envelope xmlns:soap="{soap}"><soap:Body>'
        + call.format(id=' id="op1"', version="2.3.0.9")
        + "</soap:Body></soap:Envelope>"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post_envelope(service.url, with_id.encode())
    assert refused.value.code == 400 and b"soap:Client" in refused.value.read()
