"""strHCPResponse is read leniently, and the run's qbXML version is chosen safely."""

from __future__ import annotations

import pytest
from oracle import require_oracle

from qbwc_bridge.errors import MalformedQbxml, UnsupportedQuickBooks
from qbwc_bridge.qbxml.hcp import HostInfo, Negotiated, negotiate, parse_hcp
from qbwc_bridge.qbxml.versions import HIGHEST, MINIMUM, SUPPORTED, QbxmlVersion

PRO_2006 = (
    "HostQueryRs+CompanyQueryRs+PreferencesQueryRs.strHCPResponse.QBPro2006.consolibyte-2008.xml"
)
PREMIER_2012 = (
    "HostQueryRs+CompanyQueryRs+PreferencesQueryRs.strHCPResponse."
    "QBPremierMfgWholesale2012.qbws-2014.xml"
)


def hcp(name: str) -> str:
    return require_oracle("qbxml-responses", name).read_text("utf-8")


def v(text: str) -> QbxmlVersion:
    return QbxmlVersion.parse(text)


def test_quickbooks_pro_2006() -> None:
    host = parse_hcp(hcp(PRO_2006), company_file=r"C:\Company.QBW")
    assert host.product_name == "QuickBooks Pro 2006"
    assert (host.major_version, host.country, host.company_name) == (16, "US", "Test Company")
    assert host.supported_versions[0] == v("1.0") and host.supported_versions[-1] == v("5.0")
    assert len(host.supported_versions) == 8
    assert host.company_file == r"C:\Company.QBW"
    assert negotiate(host, 5, 0, "US") == Negotiated(v("5.0"), "US")


def test_quickbooks_premier_2012() -> None:
    host = parse_hcp(hcp(PREMIER_2012))
    assert host.product_name == "QuickBooks: Premier Manufacturing and Wholesale Edition 2012"
    assert (host.major_version, host.company_name) == (22, "Wholesale/Distributor Sample File")
    assert host.supported_versions[-1] == v("11.0")
    assert negotiate(host, 11, 0, "US").version == v("11.0")


def test_lenient_about_missing_parts() -> None:
    host = parse_hcp("<QBXML><QBXMLMsgsRs/></QBXML>")
    assert host == HostInfo()
    odd = parse_hcp(
        "<QBXML><QBXMLMsgsRs><HostQueryRs statusCode='0'><HostRet><MajorVersion>x</MajorVersion>"
        "<SupportedQBXMLVersion>CA2.0</SupportedQBXMLVersion><SupportedQBXMLVersion>13.0"
        "</SupportedQBXMLVersion></HostRet></HostQueryRs></QBXMLMsgsRs></QBXML>"
    )
    assert odd.major_version is None and odd.supported_versions == (v("13.0"),)


@pytest.mark.parametrize("text", ["", "garbage", "<Other/>", "<!DOCTYPE x><QBXML/>", "\udc80"])
def test_malformed_hcp(text: str) -> None:
    with pytest.raises(MalformedQbxml):
        parse_hcp(text)


def test_negotiation_caps_at_both_sides_and_ours() -> None:
    newest = HostInfo(supported_versions=tuple(map(v, ["12.0", "13.0", "14.0", "16.0", "17.0"])))
    assert negotiate(newest, 17, 0, "US").version == HIGHEST == v("16.0")
    assert negotiate(newest, 13, 0, "US").version == v("13.0")
    assert negotiate(None, 13, 0, "US").version == v("13.0")
    assert negotiate(None, 12, 5, "").version == v("12.0")
    assert negotiate(None, 0, 0, "US").version == HIGHEST
    gaps = HostInfo(supported_versions=(v("5.0"), v("8.0"), v("13.0")))
    assert negotiate(gaps, 12, 0, "US").version == v("8.0")


def test_the_hcp_list_wins_when_the_web_connector_figure_disagrees() -> None:
    host = HostInfo(supported_versions=(v("6.0"), v("7.0")))
    assert negotiate(host, 4, 0, "US").version == v("7.0")


def test_too_old_names_quickbooks_and_the_minimum() -> None:
    old = HostInfo(product_name="QuickBooks Pro 2005", supported_versions=(v("4.0"), v("4.1")))
    with pytest.raises(UnsupportedQuickBooks) as raised:
        negotiate(old, 4, 1, "US")
    assert "QuickBooks Pro 2005 supports qbXML up to 4.1" in raised.value.message
    assert f"at least qbXML {MINIMUM}" in raised.value.message
    with pytest.raises(UnsupportedQuickBooks, match=r"up to 3\.0"):
        negotiate(None, 3, 0, "US")


@pytest.mark.parametrize(("country", "edition"), [("CA", "Canadian"), ("UK", "UK")])
def test_canadian_and_uk_editions_are_refused(country: str, edition: str) -> None:
    with pytest.raises(UnsupportedQuickBooks, match=f"{edition} editions of QuickBooks are not"):
        negotiate(None, 13, 0, country)
    with pytest.raises(UnsupportedQuickBooks, match="sales tax elements differ"):
        negotiate(HostInfo(country=country), 13, 0, "")


def test_versions_order_parse_and_print() -> None:
    assert v("2.1") < v("10.0") < v("13.0")
    assert str(v(" 13.0 ")) == "13.0" and str(QbxmlVersion(8)) == "8.0"
    assert list(SUPPORTED) == sorted(SUPPORTED) and v("5.0") == MINIMUM
    for bad in ["", "13", "x.0", "13.0.1", "١٣.٠"]:
        with pytest.raises(ValueError, match="not a qbXML version"):
            QbxmlVersion.parse(bad)
