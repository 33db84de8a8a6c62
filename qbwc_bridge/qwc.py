"""The .qwc file an IT admin adds to the Web Connector ("Add an application")."""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml import etree

from qbwc_bridge.domain.company import Company
from qbwc_bridge.errors import BridgeError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class InsecureUrl(BridgeError):
    """The Web Connector accepts only https URLs, except for localhost."""


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl(f"{url!r} is not an http(s) URL; give the service's /qbwc address")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise InsecureUrl(
            f"The Web Connector refuses plain http for {parts.hostname}: serve qbwc-bridge "
            "behind TLS (see deploy/nginx.conf) and use an https:// URL"
        )
    return url


class InvalidUrl(BridgeError):
    """That is not a usable URL."""


def qwc_document(
    company: Company,
    url: str,
    *,
    support_url: str = "",
    app_name: str = "",
    run_every_minutes: int = 15,
) -> bytes:
    """The .qwc XML, elements in the order of Intuit's samples."""
    check_url(url)
    support = support_url or url.rstrip("/") + "?wsdl"
    if urlsplit(support).scheme not in ("http", "https"):
        raise InvalidUrl(f"The support URL {support!r} must be an http(s) URL")
    root = etree.Element("QBWCXML")
    fields = [
        ("AppName", app_name or f"qbwc-bridge {company.name}"),
        ("AppID", ""),
        ("AppURL", url),
        ("AppDescription", f"Sales channel orders and inventory for {company.name} (qbwc-bridge)"),
        ("AppSupport", support),
        ("UserName", company.username),
        ("OwnerID", company.owner_id),
        ("FileID", company.file_id),
        ("QBType", "QBFS"),
    ]
    for name, value in fields:
        etree.SubElement(root, name).text = value
    scheduler = etree.SubElement(root, "Scheduler")
    etree.SubElement(scheduler, "RunEveryNMinutes").text = str(run_every_minutes)
    etree.SubElement(root, "IsReadOnly").text = "false"
    etree.SubElement(root, "Style").text = "Document"
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
