"""The spyne application: Intuit's namespace, SOAP 1.1 document/literal in and out."""

from __future__ import annotations

from typing import Any

from spyne import Application
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from qbwc_bridge.soap.guard import ENGINE_ATTRIBUTE
from qbwc_bridge.soap.service import QBWebConnectorSvc

NAMESPACE = "http://developer.intuit.com/"


def make_soap_app(engine: Any) -> WsgiApplication:
    application = Application(
        [QBWebConnectorSvc],
        tns=NAMESPACE,
        name="QBWebConnectorSvc",
        in_protocol=Soap11(validator=None),
        out_protocol=Soap11(),
    )
    setattr(application, ENGINE_ATTRIBUTE, engine)
    # spyne's own cap (2 MiB) would refuse a large inventory page below our configured limit.
    return WsgiApplication(application, max_content_length=engine.settings.max_request_bytes)
