"""HostQuery, CompanyQuery and PreferencesQuery: what the Web Connector asks first."""

from __future__ import annotations

from lxml import etree

from qbwc_bridge.simulator.quickbooks.books import Books
from qbwc_bridge.simulator.schema import Version, parse_version

KNOWN_QBXML_VERSIONS = (
    "1.0", "1.1", "2.0", "2.1", "3.0", "4.0", "4.1", "5.0", "6.0", "7.0", "8.0", "9.0",
    "10.0", "11.0", "12.0", "13.0", "14.0", "15.0", "16.0",
)  # fmt: skip


class CompanyRequests(Books):
    """How QuickBooks describes itself and the open company file."""

    def _host_ret(self) -> etree._Element:
        host = etree.Element("HostRet")
        major = parse_version(self.max_version)
        for tag, text in (
            ("ProductName", self.product_name),
            ("MajorVersion", str(major[0] + 11)),
            ("MinorVersion", "0"),
            ("Country", self.country),
        ):
            etree.SubElement(host, tag).text = text
        for version in KNOWN_QBXML_VERSIONS:
            if parse_version(version) <= major:
                etree.SubElement(host, "SupportedQBXMLVersion").text = version
        etree.SubElement(host, "IsAutomaticLogin").text = "false"
        etree.SubElement(host, "QBFileMode").text = "SingleUser"
        return host

    def _company_ret(self) -> etree._Element:
        company = etree.Element("CompanyRet")
        for tag, text in (
            ("IsSampleCompany", "false"),
            ("CompanyName", self.company_name),
            ("LegalCompanyName", self.company_name),
        ):
            etree.SubElement(company, tag).text = text
        address = etree.SubElement(company, "Address")
        for tag, text in (("City", "Mountain View"), ("State", "CA"), ("Country", self.country)):
            etree.SubElement(address, tag).text = text
        for tag, text in (
            ("FirstMonthFiscalYear", "January"),
            ("FirstMonthIncomeTaxYear", "January"),
            ("TaxForm", "OtherOrNone"),
        ):
            etree.SubElement(company, tag).text = text
        for (owner_id, name), value in self.data_extensions.items():
            ext = etree.SubElement(company, "DataExtRet")
            for tag, text in (
                ("OwnerID", owner_id),
                ("DataExtName", name),
                ("DataExtType", "STR255TYPE"),
                ("DataExtValue", value),
            ):
                etree.SubElement(ext, tag).text = text
        return company


def _product_name(version: Version) -> str:
    year = {11: 2012, 12: 2013, 13: 2014, 14: 2015, 15: 2016}.get(version[0], 2017)
    return f"QuickBooks: Premier Edition {year}"


def _preferences_ret() -> etree._Element:
    preferences = etree.Element("PreferencesRet")
    groups = (
        (
            "AccountingPreferences",
            (
                ("IsUsingAccountNumbers", "false"),
                ("IsRequiringAccounts", "true"),
                ("IsUsingClassTracking", "false"),
                ("IsUsingAuditTrail", "true"),
                ("IsAssigningJournalEntryNumbers", "true"),
            ),
        ),
        ("MultiCurrencyPreferences", (("IsMultiCurrencyOn", "false"),)),
        (
            "PurchasesAndVendorsPreferences",
            (
                ("IsUsingInventory", "true"),
                ("DaysBillsAreDue", "30"),
                ("IsAutomaticallyUsingDiscounts", "false"),
            ),
        ),
        (
            "SalesAndCustomersPreferences",
            (
                ("IsTrackingReimbursedExpensesAsIncome", "false"),
                ("IsAutoApplyingPayments", "true"),
            ),
        ),
    )
    for group, values in groups:
        element = etree.SubElement(preferences, group)
        for tag, text in values:
            etree.SubElement(element, tag).text = text
    return preferences
