"""The stand-in Web Connector talks to the real service over HTTP, from Intuit's WSDL."""

from __future__ import annotations

import pytest
from oracle import require_oracle
from soapclient import Service

from qbwc_bridge.simulator import FakeQuickBooks, WebConnector

pytestmark = pytest.mark.oracle


def test_a_wrong_password_ends_the_run_with_nvu(service: Service) -> None:
    wsdl = require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl")
    quickbooks = FakeQuickBooks()
    seen: list[str] = []
    connector = WebConnector(
        service.url, "acme-user", "not the password", quickbooks, wsdl=wsdl, progress=seen.append
    )
    report = connector.run()
    assert report.auth_result == "nvu"
    assert report.outcome == "auth-failed"
    assert report.exchanges == 0 and report.requests == ()
    assert quickbooks.round_trips == 0
    assert [t.method for t in report.timings] == ["serverVersion", "clientVersion", "authenticate"]
    assert seen == list(report.progress) and seen
