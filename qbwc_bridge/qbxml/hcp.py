"""What QuickBooks told the Web Connector about itself, and the qbXML version a run speaks.

The first sendRequestXML of a run carries strHCPResponse (HostQuery + CompanyQuery +
PreferencesQuery answers) and the highest qbXML version of the installed QuickBooks; the run
must never send a request that version lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from qbwc_bridge.errors import MalformedQbxml, MalformedXml, UnsupportedQuickBooks
from qbwc_bridge.qbxml.versions import HIGHEST, MINIMUM, SUPPORTED, QbxmlVersion
from qbwc_bridge.safexml import parse_xml

SUPPORTED_COUNTRIES = frozenset({"US"})
_COUNTRY_NAMES = {"CA": "Canadian", "UK": "UK", "GB": "UK", "AU": "Australian"}


@dataclass(frozen=True, slots=True)
class HostInfo:
    """HostRet and CompanyRet as the bridge uses them; "" / () where QuickBooks said nothing."""

    product_name: str = ""
    major_version: int | None = None
    country: str = ""
    supported_versions: tuple[QbxmlVersion, ...] = ()
    company_name: str = ""
    company_file: str = ""
    # (OwnerID, DataExtName, DataExtValue) of CompanyRet's private data extensions: the
    # Web Connector stamps a file with the .qwc's FileID under its OwnerID.
    data_extensions: tuple[tuple[str, str, str], ...] = ()

    def file_id(self, owner_id: str) -> str:
        """The FileID the Web Connector stamped for ``owner_id``, or ""."""
        for owner, name, value in self.data_extensions:
            if owner.upper() == owner_id.upper() and name == "FileID":
                return value
        return ""


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The qbXML version and country every request of a run is built for."""

    version: QbxmlVersion
    country: str


def parse_hcp(str_hcp_response: str, *, company_file: str = "") -> HostInfo:
    """Read strHCPResponse leniently: missing parts give defaults, unreadable XML raises
    MalformedQbxml (an empty string too: only the first sendRequestXML carries one)."""
    root = _parse(str_hcp_response)
    if root.tag != "QBXML":
        raise MalformedQbxml(f"strHCPResponse root is <{str(root.tag)[:80]}>, not <QBXML>")
    host = root.find("QBXMLMsgsRs/HostQueryRs/HostRet")
    company = root.find("QBXMLMsgsRs/CompanyQueryRs/CompanyRet")
    return HostInfo(
        product_name=_text(host, "ProductName"),
        major_version=_int_or_none(_text(host, "MajorVersion")),
        country=_text(host, "Country").upper(),
        supported_versions=_versions(host),
        company_name=_text(company, "CompanyName"),
        company_file=company_file,
        data_extensions=tuple(
            (_text(ext, "OwnerID"), _text(ext, "DataExtName"), _text(ext, "DataExtValue"))
            for ext in (company.iterfind("DataExtRet") if company is not None else ())
        ),
    )


def _parse(text: str) -> etree._Element:
    try:
        text.encode("utf-8")
        return parse_xml(text)
    except MalformedXml as exc:
        raise MalformedQbxml(exc.problem, exc.excerpt) from exc
    except UnicodeEncodeError as exc:
        raise MalformedQbxml(f"strHCPResponse is not valid text: {exc.reason}") from exc
    except (ValueError, LookupError, etree.LxmlError) as exc:
        raise MalformedQbxml(f"unreadable strHCPResponse: {exc}") from exc


def _text(parent: etree._Element | None, path: str) -> str:
    return "" if parent is None else (parent.findtext(path) or "").strip()


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None


def _versions(host: etree._Element | None) -> tuple[QbxmlVersion, ...]:
    """Supported versions, skipping entries such as "CA2.0" that are not plain numbers."""
    found: set[QbxmlVersion] = set()
    for element in () if host is None else host.iterfind("SupportedQBXMLVersion"):
        try:
            found.add(QbxmlVersion.parse(element.text or ""))
        except ValueError:
            continue
    return tuple(sorted(found))


def negotiate(host: HostInfo | None, major: int, minor: int, country: str) -> Negotiated:
    """The highest version both sides speak.

    ``major.minor`` is the Web Connector's qbXMLMajorVers/MinorVers (QuickBooks' highest).
    The HCP list, when present, is authoritative about what QuickBooks speaks; the Web
    Connector's figure caps it too when given (0 = unknown). Never above :data:`HIGHEST`.
    """
    chosen_country = _country(host, country)
    offered = _offered(host, major, minor)
    usable = [version for version in SUPPORTED if version in offered]
    if not usable:
        raise UnsupportedQuickBooks(_too_old_message(host, major, minor))
    return Negotiated(version=usable[-1], country=chosen_country)


def _country(host: HostInfo | None, country: str) -> str:
    said = {(country or "").strip().upper(), (host.country if host else "").upper()} - {""}
    unsupported = sorted(said - SUPPORTED_COUNTRIES)
    if unsupported:
        edition = _COUNTRY_NAMES.get(unsupported[0], f"'{unsupported[0]}'")
        raise UnsupportedQuickBooks(
            f"{edition} editions of QuickBooks are not supported yet: their sales tax elements "
            "differ from the US edition's; only US editions of QuickBooks Desktop are supported"
        )
    return "US"


def _offered(host: HostInfo | None, major: int, minor: int) -> frozenset[QbxmlVersion]:
    cap = QbxmlVersion(major, minor) if major > 0 else HIGHEST
    if host is not None and host.supported_versions:
        listed = frozenset(host.supported_versions)
        capped = frozenset(version for version in listed if version <= cap)
        return capped if capped & frozenset(SUPPORTED) else listed
    return frozenset(version for version in SUPPORTED if version <= cap)


def _too_old_message(host: HostInfo | None, major: int, minor: int) -> str:
    product = host.product_name if host and host.product_name else "This QuickBooks"
    if host is not None and host.supported_versions:
        speaks = str(host.supported_versions[-1])
    else:
        speaks = str(QbxmlVersion(major, minor))
    return (
        f"{product} supports qbXML up to {speaks}; qbwc-bridge needs at least qbXML {MINIMUM} "
        "(QuickBooks 2006 or newer): upgrade QuickBooks Desktop"
    )
