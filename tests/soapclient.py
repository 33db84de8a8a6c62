"""A zeep client built from Intuit's WSDL, as the Web Connector sees the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oracle import require_oracle
from zeep import Client

from qbwc_bridge.config import Settings
from qbwc_bridge.store import Store

BINDING = "{http://developer.intuit.com/}TroubleshootWebServiceFSSoap"
PASSWORD = "correct horse battery"


def intuit_client(url: str) -> Any:
    """A SOAP client from Intuit's own WSDL, pointed at ``url``: what the Web Connector speaks."""
    wsdl = require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl")
    return Client(str(wsdl)).create_service(BINDING, url)


@dataclass
class Service:
    url: str
    store: Store
    settings: Settings
    soap: Any
