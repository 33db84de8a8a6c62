"""FakeQuickBooks: the public face of the stand-in, message handling and request dispatch."""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree

from qbwc_bridge.errors import MalformedXml
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator.quickbooks.books import _Iterator
from qbwc_bridge.simulator.quickbooks.company import (
    CompanyRequests,
    _preferences_ret,
    _product_name,
)
from qbwc_bridge.simulator.quickbooks.customers import _CUSTOMER_RET, CustomerRequests
from qbwc_bridge.simulator.quickbooks.edits import DeletedRecord, TransactionEdits, sale_address
from qbwc_bridge.simulator.quickbooks.elements import (
    _STATUS_OK,
    _TAX_NON,
    _Answer,
    _child,
    _children,
    _edit_sequence,
    _set_status,
    _Status,
    _texts,
    _to_cp1252,
)
from qbwc_bridge.simulator.quickbooks.failures import (
    QuickBooksFailure,
    QuickBooksParseError,
    ResponseLost,
)
from qbwc_bridge.simulator.quickbooks.lists import ListRequests, default_accounts
from qbwc_bridge.simulator.quickbooks.payments import PaymentRequests
from qbwc_bridge.simulator.quickbooks.records import (
    CustomerRecord,
    Field,
    ItemRecord,
    ItemStock,
    LatencyModel,
    PaymentRecord,
    SaleLine,
    TransactionLine,
    TransactionRecord,
    TxnKind,
)
from qbwc_bridge.simulator.quickbooks.transactions import _TXN_SPECS
from qbwc_bridge.simulator.schema import QbxmlSchemas, Version, default_schemas, parse_version

_LIST_ID_START = 0x80000001
_TXN_ID_START = 0x100
_MAX_LENGTH_ERROR = "SCHEMAV_CVC_MAXLENGTH_VALID"
_VERSION_PI = re.compile(r"""version\s*=\s*["']([^"']*)["']""")


def _default_clock() -> datetime:
    return datetime.now().astimezone()


# The characters Windows-1252 puts at 0x80-0x9F (and the C1 controls Latin-1 has there).
_WINDOWS_1252_EXTRAS = frozenset(
    bytes([code]).decode("cp1252", errors="ignore") or chr(code) for code in range(0x80, 0xA0)
)


class FakeQuickBooks(
    CustomerRequests, ListRequests, TransactionEdits, PaymentRequests, CompanyRequests
):
    """QuickBooks Desktop behind the Web Connector: stateful, in memory, deterministic enough.

    Parameters: ``max_version`` the highest qbXML version it supports; ``country`` US/CA/UK;
    ``items`` inventory (and other) items by FullName; ``validate_with`` a folder holding
    qbxmlops*.xsd (default: the oracle, when found); ``clock`` returns an aware now();
    ``latency`` the modelled time per message and request, accumulated in
    ``modelled_seconds`` (and slept only when ``sleep``); ``payment_methods`` restricts
    PaymentMethodRef names (default: any is accepted); ``iterator_ttl_seconds`` how long an
    unused iterator lives.
    """

    def __init__(
        self,
        *,
        max_version: str = "13.0",
        country: str = "US",
        product_name: str | None = None,
        items: Mapping[str, ItemStock] | None = None,
        validate_with: Path | None = None,
        validate: bool = True,
        clock: Callable[[], datetime] | None = None,
        latency: LatencyModel | None = None,
        sleep: bool = False,
        payment_methods: Iterable[str] | None = None,
        iterator_ttl_seconds: float = 300.0,
        company_name: str = "Sample Company",
        strict_text: bool = True,
    ) -> None:
        self.max_version = max_version
        self.country = country
        self.product_name = product_name or _product_name(parse_version(max_version))
        self.company_name = company_name
        # As the strictest QuickBooks: Windows-1252's extras (curly quotes, dashes, "€",
        # "™") fail the message; only ASCII and Latin-1 are known to pass everywhere.
        self.strict_text = strict_text
        # Private data extensions of the company file, (OwnerID, name) -> value: the Web
        # Connector stamps a file with its .qwc's FileID (stamp_file_id).
        self.data_extensions: dict[tuple[str, str], str] = {}
        self.latency = latency or LatencyModel()
        self.sleep = sleep
        self.unreachable = False
        self.modelled_seconds = 0.0
        self._clock = clock or _default_clock
        self._schemas = _schemas_for(validate_with) if validate else None
        self._payment_methods = (
            {name.lower(): name for name in payment_methods}
            if payment_methods is not None
            else None
        )
        self._known_payment_methods: dict[str, tuple[str, str]] = {}
        self._iterator_ttl = timedelta(seconds=iterator_ttl_seconds)
        self._next_list_id = _LIST_ID_START
        self._next_txn_id = _TXN_ID_START
        self._next_txn_number = 1
        self._next_ref_number: dict[TxnKind, int] = dict.fromkeys(_TXN_SPECS, 1)
        self._customers: dict[str, CustomerRecord] = {}
        self._customer_ids: dict[str, str] = {}
        self._items: dict[str, ItemRecord] = {}
        self._item_ids: dict[str, str] = {}
        self._item_order: list[str] = []
        self._txns: dict[str, TransactionRecord] = {}
        self._deleted_txns: list[DeletedRecord] = []
        # The version the message being answered declared: older ones get no newer elements.
        self._answer_version = parse_version(max_version)
        self._payments: dict[str, PaymentRecord] = {}
        # Classes and ship methods: none until seeded (add_class, add_ship_method).
        self._classes: dict[str, tuple[str, str]] = {}
        self._ship_methods: dict[str, tuple[str, str]] = {}
        self._accounts: dict[str, tuple[str, str]] = default_accounts()
        self._iterators: dict[str, _Iterator] = {}
        self._request_log: list[str] = []
        self._round_trips = 0
        self._lose_countdown: int | None = None
        self._lose_predicate: Callable[[str], bool] | None = None
        self._pending_failure: QuickBooksFailure | None = None
        self._refusals: dict[str, tuple[int, str]] = {}
        self._dispatch = self._handlers()
        for stock in (items or {}).values():
            self.set_item(stock)

    # ----------------------------------------------------------------- inspection

    @property
    def customers(self) -> tuple[CustomerRecord, ...]:
        return tuple(self._customers[key] for key in sorted(self._customers))

    def customer(self, full_name: str) -> CustomerRecord | None:
        return self._customers.get(full_name.lower())

    @property
    def payments(self) -> tuple[PaymentRecord, ...]:
        return tuple(sorted(self._payments.values(), key=lambda p: p.txn_number))

    @property
    def items(self) -> tuple[ItemRecord, ...]:
        return tuple(self._items[key] for key in self._item_order)

    def item(self, full_name: str) -> ItemRecord | None:
        return self._items.get(full_name.lower())

    def transactions(self, kind: TxnKind) -> tuple[TransactionRecord, ...]:
        found = [txn for txn in self._txns.values() if txn.kind == kind]
        return tuple(sorted(found, key=lambda txn: txn.txn_number))

    def invoices(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("Invoice")

    def sales_receipts(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("SalesReceipt")

    def sales_orders(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("SalesOrder")

    def credit_memos(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("CreditMemo")

    @property
    def request_log(self) -> tuple[str, ...]:
        """Every request element processed, in order (not the ones skipped by stopOnError)."""
        return tuple(self._request_log)

    @property
    def round_trips(self) -> int:
        return self._round_trips

    # ----------------------------------------------------------------- seeding

    def set_item(self, stock: ItemStock) -> ItemRecord:
        """Add or replace an item; a replaced item keeps its ListID and TimeCreated."""
        now = self._clock()
        key = stock.full_name.lower()
        modified = stock.time_modified or now
        existing = self._items.get(key)
        if existing is not None:
            record = replace(
                existing,
                stock=stock,
                time_modified=modified,
                edit_sequence=_edit_sequence(modified),
            )
        else:
            record = ItemRecord(
                list_id=self._new_list_id(now),
                stock=stock,
                time_created=min(now, modified),
                time_modified=modified,
                edit_sequence=_edit_sequence(modified),
            )
            bisect.insort(self._item_order, key)
        self._items[key] = record
        self._item_ids[record.list_id] = key
        return record

    def add_customer(self, full_name: str, **text_fields: str) -> CustomerRecord:
        """Seed a customer (parents of a 'Parent:Job' name are created as needed)."""
        parent_name, _, name = full_name.rpartition(":")
        parent = self.customer(parent_name) if parent_name else None
        if parent_name and parent is None:
            parent = self.add_customer(parent_name)
        now = self._clock()
        order = {tag: index for index, tag in enumerate(_CUSTOMER_RET)}
        fields = sorted(text_fields.items(), key=lambda pair: order[pair[0]])
        record = CustomerRecord(
            list_id=self._new_list_id(now),
            name=_to_cp1252(name),
            full_name=_to_cp1252(full_name),
            sublevel=full_name.count(":"),
            parent_list_id=parent.list_id if parent else None,
            is_active=True,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            balance=Decimal(0),
            fields=tuple((tag, _to_cp1252(value)) for tag, value in fields),
        )
        self._store_customer(record)
        return record

    def add_invoice(
        self,
        customer: str,
        amount: Decimal,
        *,
        ref_number: str | None = None,
        txn_id: str | None = None,
        txn_date: date | None = None,
        memo: str = "",
        po_number: str = "",
    ) -> TransactionRecord:
        """Seed an open invoice of one amount-only line (for payment and query tests): a
        bookkeeper's invoice, or with ``memo``/``po_number`` one another tool entered."""
        owner = self.customer(customer) or self.add_customer(customer)
        now = self._clock()
        new_id = txn_id or self._new_txn_id(now)
        line = TransactionLine(
            self._new_txn_id(now), None, None, None, None, None, None, amount, _TAX_NON
        )
        record = TransactionRecord(
            kind="Invoice",
            txn_id=new_id,
            txn_number=self._take_txn_number(),
            customer=owner.full_name,
            customer_list_id=owner.list_id,
            txn_date=txn_date or now.date(),
            ref_number=ref_number if ref_number is not None else self._take_ref_number("Invoice"),
            lines=(line,),
            subtotal=amount,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            fields=tuple(
                (tag, value) for tag, value in (("PONumber", po_number), ("Memo", memo)) if value
            ),
        )
        self._txns[new_id] = record
        self._change_balance(owner.list_id, amount)
        return record

    def add_sale(
        self,
        kind: TxnKind,
        customer: str,
        lines: Sequence[SaleLine],
        *,
        ref_number: str | None = None,
        txn_date: date | None = None,
        bill_address: Mapping[str, str] | None = None,
        ship_address: Mapping[str, str] | None = None,
        memo: str = "",
        po_number: str = "",
    ) -> TransactionRecord:
        """Enter a sale by hand (its items must exist; its customer is added if need be);
        ``bill_address`` / ``ship_address`` as {"Addr1": ..., "City": ...}."""
        owner = self.customer(customer) or self.add_customer(customer)
        now = self._clock()
        fields: list[Field] = [
            (tag, _to_cp1252(value))
            for tag, value in (("PONumber", po_number), ("Memo", memo))
            if value and (tag != "PONumber" or kind != "SalesReceipt")
        ]
        for tag, address in (("BillAddress", bill_address), ("ShipAddress", ship_address)):
            if address:
                fields.append((tag, sale_address(address)))
        lines_built = self._sale_lines(lines, now)
        record = TransactionRecord(
            kind=kind,
            txn_id=self._new_txn_id(now),
            txn_number=self._take_txn_number(),
            customer=owner.full_name,
            customer_list_id=owner.list_id,
            txn_date=txn_date or now.date(),
            ref_number=ref_number if ref_number is not None else self._take_ref_number(kind),
            lines=lines_built,
            subtotal=sum((line.amount for line in lines_built), Decimal(0)),
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            fields=tuple(fields),
        )
        self._txns[record.txn_id] = record
        self._move_balance(record, record.total)
        return record

    # ----------------------------------------------------------------- faults and sessions

    def lose_response_after(self, n: int = 1) -> None:
        """The n-th message processed from now is applied, but its response is lost."""
        if n < 1:
            raise ValueError("n counts messages from 1")
        self._lose_countdown = n

    def lose_response_when(self, predicate: Callable[[str], bool]) -> None:
        """The next message whose request text satisfies ``predicate`` loses its response."""
        self._lose_predicate = predicate

    def fail_next_with_hresult(self, hresult: str, message: str) -> None:
        """The next message fails as a whole (nothing applied), as when QuickBooks errors out."""
        self._pending_failure = QuickBooksFailure(hresult, message)

    def begin_session(self) -> None:
        """A new Web Connector run opens a new QuickBooks session: iterators do not survive it."""
        self._iterators.clear()

    # ----------------------------------------------------------------- the Web Connector's view

    def stamp_file_id(self, owner_id: str, file_id: str) -> None:
        """What the Web Connector does at its first run against this file."""
        self.data_extensions.setdefault((owner_id, "FileID"), file_id)

    def hcp_response(self) -> str:
        """HostQuery + CompanyQuery + PreferencesQuery answers, as in the first sendRequestXML."""
        messages = etree.Element("QBXMLMsgsRs")
        for request_id, tag, ret in (
            ("0", "HostQueryRs", self._host_ret()),
            ("1", "CompanyQueryRs", self._company_ret()),
            ("2", "PreferencesQueryRs", _preferences_ret()),
        ):
            rs = etree.SubElement(messages, tag, requestID=request_id)
            _set_status(rs, 0, "Info", _STATUS_OK)
            rs.append(ret)
        return _serialize(messages)

    def process(self, request_xml: str) -> str:
        """ProcessRequest: answer one qbXML message, or raise QuickBooksFailure / ResponseLost."""
        self._round_trips += 1
        if self._pending_failure is not None:
            failure, self._pending_failure = self._pending_failure, None
            raise failure
        requests, on_error = self._read_message(request_xml)
        messages = etree.Element("QBXMLMsgsRs")
        processed = 0
        for request in requests:
            self._request_log.append(request.tag)
            processed += 1
            rs = self._respond(request)
            messages.append(rs)
            if rs.get("statusSeverity") == "Error" and on_error != "continueOnError":
                break
        self._spend(processed)
        response = _serialize(messages)
        if self._response_lost(request_xml):
            raise ResponseLost(response)
        return response

    # ----------------------------------------------------------------- message level

    def _read_message(self, request_xml: str) -> tuple[list[etree._Element], str]:
        if any(ord(char) > 0xFFFF for char in request_xml):
            raise QuickBooksParseError("a character outside the Basic Multilingual Plane")
        try:
            root = parse_xml(request_xml)
        except (MalformedXml, UnicodeError) as exc:
            raise QuickBooksParseError(str(exc)) from exc
        text = etree.tostring(root, encoding="unicode")
        if any(ord(char) > 0xFFFF for char in text):
            raise QuickBooksParseError("a character reference outside the Basic Multilingual Plane")
        if self.strict_text and any(char in _WINDOWS_1252_EXTRAS for char in text):
            raise QuickBooksParseError("a character of Windows-1252's 0x80-0x9F range")
        version = self._declared_version(root)
        self._answer_version = version
        if self._schemas is not None:
            schema = self._schemas.for_version(version)
            if not schema.validate(root.getroottree()):
                problems = _structural_errors(schema.error_log)
                if problems:
                    raise QuickBooksParseError(problems[0])
        messages = _child(root, "QBXMLMsgsRq") if root.tag == "QBXML" else None
        if messages is None:
            raise QuickBooksParseError("no QBXML/QBXMLMsgsRq element")
        return _children(messages), messages.get("onError", "stopOnError")

    def _declared_version(self, root: etree._Element) -> Version:
        for sibling in root.itersiblings(preceding=True):
            if isinstance(sibling, etree._ProcessingInstruction) and sibling.target == "qbxml":
                match = _VERSION_PI.search(sibling.text or "")
                if match is None:
                    break
                try:
                    version = parse_version(match.group(1))
                except ValueError:
                    break
                if version > parse_version(self.max_version):
                    raise QuickBooksParseError(
                        f"qbXML {match.group(1)} is above {self.max_version}"
                    )
                return version
        raise QuickBooksParseError("no valid <?qbxml version?> processing instruction")

    def _spend(self, requests: int) -> None:
        seconds = self.latency.seconds_for(requests)
        self.modelled_seconds += seconds
        if self.sleep and seconds > 0:
            time.sleep(seconds)

    def _response_lost(self, request_xml: str) -> bool:
        if self._lose_countdown is not None:
            self._lose_countdown -= 1
            if self._lose_countdown == 0:
                self._lose_countdown = None
                return True
        if self._lose_predicate is not None and self._lose_predicate(request_xml):
            self._lose_predicate = None
            return True
        return False

    def refuse(self, request: str, code: int, message: str) -> None:
        """Answer every ``request`` (e.g. "InvoiceAddRq") with this error status from now on:
        a record someone keeps open, a damaged list — a status that never passes."""
        self._refusals[request] = (code, message)

    def _respond(self, request: etree._Element) -> etree._Element:
        handler = self._dispatch.get(request.tag)
        try:
            if request.tag in self._refusals:
                code, message = self._refusals[request.tag]
                raise _Status(code, "Error", message)
            if handler is None:
                raise _Status(
                    1030, "Error", "This request is not supported by this implementation."
                )
            answer = handler(request)
        except _Status as status:
            answer = _Answer([], status.code, status.severity, status.message)
        rs_tag = request.tag[:-2] + "Rs" if request.tag.endswith("Rq") else request.tag + "Rs"
        rs = etree.Element(rs_tag)
        if request.get("requestID") is not None:
            rs.set("requestID", request.get("requestID", ""))
        _set_status(rs, answer.code, answer.severity, answer.message)
        if answer.iterator is not None:
            rs.set("iteratorRemainingCount", str(answer.iterator[0]))
            rs.set("iteratorID", answer.iterator[1])
        include = set(_texts(request, "IncludeRetElement"))
        for ret in answer.rets:
            if include:
                for child in _children(ret):
                    if child.tag not in include:
                        ret.remove(child)
            rs.append(ret)
        return rs

    def _handlers(self) -> dict[str, Callable[[etree._Element], _Answer]]:
        return {
            "HostQueryRq": lambda rq: _Answer([self._host_ret()]),
            "CompanyQueryRq": lambda rq: _Answer([self._company_ret()]),
            "PreferencesQueryRq": lambda rq: _Answer([_preferences_ret()]),
            "CustomerQueryRq": self._customer_query,
            "CustomerAddRq": self._customer_add,
            "InvoiceAddRq": lambda rq: self._txn_add(rq, "Invoice"),
            "SalesReceiptAddRq": lambda rq: self._txn_add(rq, "SalesReceipt"),
            "SalesOrderAddRq": lambda rq: self._txn_add(rq, "SalesOrder"),
            "CreditMemoAddRq": lambda rq: self._txn_add(rq, "CreditMemo"),
            "InvoiceQueryRq": lambda rq: self._txn_query(rq, "Invoice"),
            "SalesReceiptQueryRq": lambda rq: self._txn_query(rq, "SalesReceipt"),
            "SalesOrderQueryRq": lambda rq: self._txn_query(rq, "SalesOrder"),
            "CreditMemoQueryRq": lambda rq: self._txn_query(rq, "CreditMemo"),
            "TxnDeletedQueryRq": self._txn_deleted_query,
            "TxnDelRq": self._txn_del,
            "ItemQueryRq": self._any_item_query,
            "ItemNonInventoryAddRq": self._item_non_inventory_add,
            "ReceivePaymentAddRq": self._payment_add,
            "ReceivePaymentQueryRq": self._payment_query,
            "ItemInventoryQueryRq": lambda rq: self._item_query(rq, "ItemInventory"),
            "ItemInventoryAssemblyQueryRq": lambda rq: self._item_query(
                rq, "ItemInventoryAssembly"
            ),
        }


def _schemas_for(folder: Path | None) -> QbxmlSchemas | None:
    if folder is None:
        return default_schemas()
    return QbxmlSchemas(folder)


def _structural_errors(log: etree._ListErrorLog) -> list[str]:
    """Schema errors QuickBooks rejects at parse time; over-long strings are 3070 per request."""
    too_long = {entry.path for entry in log if entry.type_name == _MAX_LENGTH_ERROR}
    return [
        f"{entry.path}: {entry.message}"
        for entry in log
        if entry.type_name != _MAX_LENGTH_ERROR and entry.path not in too_long
    ]


def _serialize(messages: etree._Element) -> str:
    """The response text, laid out like QuickBooks': one element per line, no indentation."""
    root = etree.Element("QBXML")
    root.append(messages)
    for element in root.iter():
        if len(element):
            element.text = "\n"
        element.tail = "\n"
    return '<?xml version="1.0" ?>\n' + etree.tostring(root, encoding="unicode")
