"""CustomerAdd and CustomerQuery: the customer list, jobs under their parents included."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _NOT_IN_LIST,
    _address_blocks,
    _Answer,
    _bool,
    _check_lengths,
    _child,
    _edit_sequence,
    _money,
    _ordered,
    _passthrough,
    _ref,
    _ref_parts,
    _required_child,
    _stamp,
    _Status,
    _tags,
    _text,
    _texts,
    _Value,
)
from qbwc_bridge.simulator.quickbooks.queries import Queries, _list_filters
from qbwc_bridge.simulator.quickbooks.records import CustomerRecord, _field

_CUSTOMER_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ClassRef ParentRef "
    "Sublevel CompanyName Salutation FirstName MiddleName LastName Suffix JobTitle BillAddress "
    "BillAddressBlock ShipAddress ShipAddressBlock ShipToAddress PrintAs Phone Mobile Pager "
    "AltPhone Fax Email Cc Contact AltContact AdditionalContactRef CustomerTypeRef TermsRef "
    "SalesRepRef Balance TotalBalance SalesTaxCodeRef ItemSalesTaxRef SalesTaxCountry "
    "ResaleNumber AccountNumber CreditLimit PreferredPaymentMethodRef JobStatus JobStartDate "
    "JobProjectedEndDate JobEndDate JobDesc JobTypeRef Notes IsStatementWithParent "
    "DeliveryMethod PreferredDeliveryMethod PriceLevelRef ExternalGUID TaxRegistrationNumber"
)
_CUSTOMER_COMPUTED = frozenset(
    _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
        "BillAddressBlock ShipAddressBlock Balance TotalBalance"
    )
)
_CUSTOMER_LIMITS = {
    "Name": 41,
    "CompanyName": 41,
    "Salutation": 15,
    "FirstName": 25,
    "MiddleName": 5,
    "LastName": 25,
    "JobTitle": 41,
    "Phone": 21,
    "AltPhone": 21,
    "Fax": 21,
    "Email": 1023,
    "Cc": 1023,
    "Contact": 41,
    "AltContact": 41,
    "ResaleNumber": 15,
    "AccountNumber": 99,
    "JobDesc": 99,
    "Notes": 4095,
}


class CustomerRequests(Queries):
    """How QuickBooks answers the customer requests."""

    def _customer_add(self, request: etree._Element) -> _Answer:
        add = _required_child(request, "CustomerAdd")
        _check_lengths(add, _CUSTOMER_LIMITS)
        name = _text(add, "Name") or ""
        parent = self._customer_parent(_child(add, "ParentRef"))
        full_name = f"{parent.full_name}:{name}" if parent else name
        if full_name.lower() in self._customers:
            raise _Status(
                3100, "Error", f'The name "{name}" of the list element is already in use.'
            )
        now = self._clock()
        record = CustomerRecord(
            list_id=self._new_list_id(now),
            name=name,
            full_name=full_name,
            sublevel=parent.sublevel + 1 if parent else 0,
            parent_list_id=parent.list_id if parent else None,
            is_active=(_text(add, "IsActive") or "true").lower() in ("true", "1"),
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            balance=Decimal(0),
            fields=tuple(_passthrough(add, _CUSTOMER_RET, _CUSTOMER_COMPUTED)),
        )
        self._store_customer(record)
        return _Answer([self._customer_ret(record)])

    def _customer_parent(self, ref: etree._Element | None) -> CustomerRecord | None:
        if ref is None:
            return None
        list_id, full_name = _ref_parts(ref)
        key = self._customer_ids.get(list_id or "") or (full_name or "").lower()
        parent = self._customers.get(key)
        if parent is None:
            raise _Status(
                3130,
                "Error",
                f'There is an invalid reference to a parent "{full_name or list_id}" in the '
                "Customers list." + _NOT_IN_LIST,
            )
        return parent

    def _customer_ret(self, record: CustomerRecord) -> etree._Element:
        pairs: list[tuple[str, _Value]] = [
            ("ListID", record.list_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("Name", record.name),
            ("FullName", record.full_name),
            ("IsActive", _bool(record.is_active)),
            ("Sublevel", str(record.sublevel)),
            ("Balance", _money(record.balance)),
            ("TotalBalance", _money(record.balance)),
        ]
        if record.parent_list_id is not None:
            parent = self._customers[self._customer_ids[record.parent_list_id]]
            pairs.append(("ParentRef", _ref(parent.list_id, parent.full_name)))
        pairs.extend(record.fields)
        pairs.extend(_address_blocks(record.fields))
        if _field(record.fields, "JobStatus") is None:
            pairs.append(("JobStatus", "None"))
        return _ordered("CustomerRet", _CUSTOMER_RET, pairs)

    def _customer_query(self, request: etree._Element) -> _Answer:
        list_ids, names = _texts(request, "ListID"), _texts(request, "FullName")
        if list_ids or names:
            return self._named_customers(list_ids, names)
        return self._run_query(
            request, lambda: self._filtered_customers(request), self._customer_by_key
        )

    def _named_customers(self, list_ids: list[str], names: list[str]) -> _Answer:
        missing_id = next((lid for lid in list_ids if lid not in self._customer_ids), None)
        if missing_id is not None:
            raise _Status(
                3120,
                "Error",
                f'Object "{missing_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
            )
        found = [self._customers[self._customer_ids[lid]] for lid in list_ids]
        found += [self._customers[n.lower()] for n in names if n.lower() in self._customers]
        rets = [self._customer_ret(record) for record in found]
        missing = next((n for n in names if n.lower() not in self._customers), None)
        if missing is not None:
            return _Answer(
                rets,
                500,
                "Warn",
                "The query request has not been fully completed. There was a required element "
                f'("{missing}") that could not be found in QuickBooks.',
            )
        return _Answer(rets)

    def _customer_by_key(self, key: str) -> etree._Element | None:
        record = self._customers.get(key)
        return self._customer_ret(record) if record else None

    def _filtered_customers(self, request: etree._Element) -> list[str]:
        now = self._clock()
        keep = _list_filters(request, now)
        return [
            key
            for key in sorted(self._customers)
            if keep(
                self._customers[key].full_name,
                self._customers[key].is_active,
                self._customers[key].time_modified,
            )
        ]
