"""Invoices, sales receipts, sales orders and credit memos: their Add and Query requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _AR_ACCOUNT,
    _CENT,
    _NOT_IN_LIST,
    _TAX_NON,
    _UNDEPOSITED,
    _address_blocks,
    _Answer,
    _bool,
    _check_lengths,
    _child,
    _children,
    _decimal,
    _edit_sequence,
    _money,
    _ordered,
    _parse_date,
    _passthrough,
    _price,
    _quantity,
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
from qbwc_bridge.simulator.quickbooks.queries import Queries, _answer_for, _by_txn_ids, _render_all
from qbwc_bridge.simulator.quickbooks.records import (
    Aggregate,
    AppliedPayment,
    CustomerRecord,
    ItemRecord,
    TransactionLine,
    TransactionRecord,
    TxnKind,
)


@dataclass(frozen=True)
class _TxnSpec:
    label: str
    ret_order: tuple[str, ...]
    line_order: tuple[str, ...]
    template: Aggregate
    ar_account: bool


_INVOICE_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef ARAccountRef "
    "TemplateRef TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock "
    "IsPending IsFinanceCharge PONumber TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef "
    "Subtotal ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal AppliedAmount BalanceRemaining "
    "Memo IsPaid CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other "
    "ExternalGUID LinkedTxn InvoiceLineRet"
)
_SALES_RECEIPT_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef TemplateRef "
    "TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock IsPending "
    "CheckNumber PaymentMethodRef DueDate SalesRepRef ShipDate ShipMethodRef FOB Subtotal "
    "ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal TotalAmount Memo CustomerMsgRef "
    "IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef DepositToAccountRef Other ExternalGUID "
    "SalesReceiptLineRet"
)
_SALES_ORDER_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef TemplateRef "
    "TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock PONumber "
    "TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef Subtotal ItemSalesTaxRef "
    "SalesTaxPercentage SalesTaxTotal TotalAmount IsManuallyClosed IsFullyInvoiced Memo "
    "CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other ExternalGUID "
    "LinkedTxn SalesOrderLineRet"
)
_CREDIT_MEMO_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef ARAccountRef "
    "TemplateRef TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock "
    "IsPending PONumber TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef Subtotal "
    "ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal TotalAmount CreditRemaining Memo "
    "CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other ExternalGUID "
    "LinkedTxn CreditMemoLineRet"
)
_LINE_RET = _tags(
    "TxnLineID ItemRef Desc Quantity UnitOfMeasure Rate RatePercent ClassRef Amount ServiceDate "
    "SalesTaxCodeRef Other1 Other2"
)
_SALES_ORDER_LINE_RET = _tags(
    "TxnLineID ItemRef Desc Quantity UnitOfMeasure Rate RatePercent ClassRef Amount "
    "SalesTaxCodeRef Invoiced IsManuallyClosed Other1 Other2"
)
_TXN_COMPUTED = frozenset(
    _tags(
        "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef TxnDate RefNumber "
        "BillAddressBlock ShipAddressBlock Subtotal SalesTaxPercentage SalesTaxTotal AppliedAmount "
        "BalanceRemaining IsPaid TotalAmount CreditRemaining IsManuallyClosed IsFullyInvoiced "
        "LinkedTxn"
    )
)
_LINE_COMPUTED = frozenset(
    _tags(
        "TxnLineID ItemRef Desc Quantity Rate RatePercent Amount SalesTaxCodeRef Invoiced "
        "IsManuallyClosed"
    )
)
_LINKED_TXN = _tags("TxnID TxnType TxnDate RefNumber LinkType Amount")

_TXN_SPECS: dict[TxnKind, _TxnSpec] = {
    "Invoice": _TxnSpec(
        "Invoice",
        tuple(_INVOICE_RET),
        tuple(_LINE_RET),
        _ref("80000003-1400000000", "Intuit Product Invoice"),
        ar_account=True,
    ),
    "SalesReceipt": _TxnSpec(
        "SalesReceipt",
        tuple(_SALES_RECEIPT_RET),
        tuple(_LINE_RET),
        _ref("80000004-1400000000", "Custom Sales Receipt"),
        ar_account=False,
    ),
    "SalesOrder": _TxnSpec(
        "SalesOrder",
        tuple(_SALES_ORDER_RET),
        tuple(_SALES_ORDER_LINE_RET),
        _ref("80000008-1400000000", "Custom Sales Order"),
        ar_account=False,
    ),
    "CreditMemo": _TxnSpec(
        "CreditMemo",
        tuple(_CREDIT_MEMO_RET),
        tuple(_LINE_RET),
        _ref("80000005-1400000000", "Custom Credit Memo"),
        ar_account=True,
    ),
}

# Elements of a sales transaction's Ret that later qbXML versions brought (the OSR marks
# them "v6.0" and so on): QuickBooks leaves them out of its answer to an older message.
_NEWER_ELEMENTS = {
    "Addr5": (6, 0),
    "Note": (6, 0),
    "BillAddressBlock": (6, 0),
    "ShipAddressBlock": (6, 0),
    "IsToBeEmailed": (6, 0),
    "Other": (6, 0),
    "Other1": (6, 0),
    "Other2": (6, 0),
    "UnitOfMeasure": (7, 0),
    "ExternalGUID": (9, 0),
}
_NEWEST_ELEMENT = max(_NEWER_ELEMENTS.values())

_TXN_LIMITS = {
    "RefNumber": 11,
    "PONumber": 25,
    "Memo": 4095,
    "FOB": 13,
    "CheckNumber": 25,
    "Other": 29,
    "Desc": 4095,
    "Other1": 29,
    "Other2": 29,
}


class TransactionRequests(Queries):
    """How QuickBooks answers the sales transaction requests."""

    def _txn_add(self, request: etree._Element, kind: TxnKind) -> _Answer:
        spec = _TXN_SPECS[kind]
        add = _required_child(request, f"{kind}Add")
        _check_lengths(add, _TXN_LIMITS)
        customer = self._find_customer(_child(add, "CustomerRef"), spec.label)
        self._check_sale_refs(add, spec.label)
        resolved = [
            (
                line,
                self._find_item(ref, spec.label)
                if (ref := _child(line, "ItemRef")) is not None
                else None,
            )
            for line in _children(add)
            if line.tag == f"{kind}LineAdd"
        ]
        group = _child(add, f"{kind}LineGroupAdd")
        if group is not None:
            _, group_name = _ref_parts(_child(group, "ItemGroupRef"))
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks ItemGroup "{group_name}" in the '
                f"{spec.label}." + _NOT_IN_LIST,
            )
        method = None
        if kind == "SalesReceipt":
            method = self._check_payment_method(_child(add, "PaymentMethodRef"), spec.label)
        now = self._clock()
        record = self._new_transaction(kind, add, customer, resolved, method, now)
        self._apply_stock(kind, record)
        self._txns[record.txn_id] = record
        if kind == "Invoice":
            self._change_balance(customer.list_id, record.total)
        elif kind == "CreditMemo":
            self._change_balance(customer.list_id, -record.total)
        return _Answer([self._txn_ret(record, lines=True, linked=False)])

    def _new_transaction(
        self,
        kind: TxnKind,
        add: etree._Element,
        customer: CustomerRecord,
        resolved: list[tuple[etree._Element, ItemRecord | None]],
        payment_method: Aggregate | None,
        now: datetime,
    ) -> TransactionRecord:
        txn_id = self._new_txn_id(now)
        lines: list[TransactionLine] = []
        running = Decimal(0)
        for line, item in resolved:
            built = self._new_line(kind, line, item, running, now)
            running += built.amount
            lines.append(built)
        txn_date_text = _text(add, "TxnDate")
        ref_number = _text(add, "RefNumber")
        fields = _passthrough(add, _TXN_SPECS[kind].ret_order, _TXN_COMPUTED)
        if payment_method is not None:
            fields = [(t, v) for t, v in fields if t != "PaymentMethodRef"]
            fields.append(("PaymentMethodRef", payment_method))
        return TransactionRecord(
            kind=kind,
            txn_id=txn_id,
            txn_number=self._take_txn_number(),
            customer=customer.full_name,
            customer_list_id=customer.list_id,
            txn_date=_parse_date(txn_date_text) if txn_date_text else now.date(),
            ref_number=ref_number if ref_number is not None else self._take_ref_number(kind),
            lines=tuple(lines),
            subtotal=running,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            fields=tuple(fields),
        )

    def _new_line(
        self,
        kind: TxnKind,
        line: etree._Element,
        item: ItemRecord | None,
        running: Decimal,
        now: datetime,
    ) -> TransactionLine:
        quantity = _decimal(_text(line, "Quantity"))
        rate = _decimal(_text(line, "Rate"))
        rate_percent = _decimal(_text(line, "RatePercent"))
        amount = _decimal(_text(line, "Amount"))
        if amount is None:
            amount = _line_amount(quantity, rate, rate_percent, running, item)
        tax_ref = _child(line, "SalesTaxCodeRef")
        tax_code: Aggregate = _TAX_NON
        if tax_ref is not None:
            tax_code = tuple((c.tag, (c.text or "").strip()) for c in _children(tax_ref))
        return TransactionLine(
            txn_line_id=self._new_txn_id(now),
            item=item.full_name if item else None,
            item_list_id=item.list_id if item else None,
            desc=_text(line, "Desc"),
            quantity=quantity,
            rate=rate,
            rate_percent=rate_percent,
            amount=amount.quantize(_CENT, rounding=ROUND_HALF_UP),
            sales_tax_code=tax_code,
            fields=tuple(_passthrough(line, _TXN_SPECS[kind].line_order, _LINE_COMPUTED)),
        )

    def _apply_stock(self, kind: TxnKind, record: TransactionRecord) -> None:
        """Sales move quantities; QuickBooks leaves the item's TimeModified alone."""
        for line in record.lines:
            item = self._items.get((line.item or "").lower())
            if item is None or item.stock.kind not in ("ItemInventory", "ItemInventoryAssembly"):
                continue
            quantity = line.quantity if line.quantity is not None else Decimal(1)
            stock = item.stock
            if kind in ("Invoice", "SalesReceipt"):
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand - quantity)
            elif kind == "CreditMemo":
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand + quantity)
            else:
                stock = replace(
                    stock, quantity_on_sales_order=stock.quantity_on_sales_order + quantity
                )
            self._items[stock.full_name.lower()] = replace(item, stock=stock)

    def _txn_ret(self, record: TransactionRecord, *, lines: bool, linked: bool) -> etree._Element:
        spec = _TXN_SPECS[record.kind]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", record.txn_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("TxnNumber", str(record.txn_number)),
            ("CustomerRef", _ref(record.customer_list_id, record.customer)),
            ("TxnDate", record.txn_date.isoformat()),
            ("Subtotal", _money(record.subtotal)),
            ("SalesTaxPercentage", "0.00"),
            ("SalesTaxTotal", "0.00"),
        ]
        if record.ref_number is not None:
            pairs.append(("RefNumber", record.ref_number))
        pairs.extend(record.fields)
        pairs.extend(_address_blocks(record.fields))
        pairs.extend(_txn_defaults(spec, record))
        pairs.extend(_txn_totals(record))
        if linked and record.payments:
            pairs.append(("LinkedTxn", [self._linked_payment(p) for p in record.payments]))
        if lines:
            tag = f"{record.kind}LineRet"
            pairs.append(
                (tag, [_line_ret(tag, spec.line_order, line, record.kind) for line in record.lines])
            )
        ret = _ordered(f"{record.kind}Ret", spec.ret_order, pairs)
        if self._answer_version < _NEWEST_ELEMENT:
            _drop_newer(ret, self._answer_version)
        return ret

    def _linked_payment(self, part: AppliedPayment) -> etree._Element:
        payment = self._payments[part.payment_txn_id]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", payment.txn_id),
            ("TxnType", "ReceivePayment"),
            ("TxnDate", payment.txn_date.isoformat()),
            ("LinkType", "AMTTYPE"),
            ("Amount", _money(-part.amount)),
        ]
        if payment.ref_number:
            pairs.append(("RefNumber", payment.ref_number))
        return _ordered("LinkedTxn", _LINKED_TXN, pairs)

    def _txn_query(self, request: etree._Element, kind: TxnKind) -> _Answer:
        records = [txn for txn in self._txns.values() if txn.kind == kind]
        lines = _text(request, "IncludeLineItems") in ("true", "1")
        linked = _text(request, "IncludeLinkedTxns") in ("true", "1")

        def render(txn_id: str) -> etree._Element | None:
            txn = self._txns.get(txn_id)
            return self._txn_ret(txn, lines=lines, linked=linked) if txn else None

        txn_ids = _texts(request, "TxnID")
        if txn_ids:
            return _by_txn_ids(txn_ids, {r.txn_id for r in records}, render)
        refs = _texts(request, "RefNumber")
        exact = _texts(request, "RefNumberCaseSensitive")
        if refs or exact:
            wanted = {ref.lower() for ref in refs}
            found = [
                r.txn_id
                for r in sorted(records, key=lambda r: r.txn_number)
                if (r.ref_number or "").lower() in wanted or r.ref_number in exact
            ]
            return _answer_for(_render_all(found, render), None)
        keep = self._txn_filters(request)
        ordered = sorted(records, key=lambda r: r.txn_number)
        return self._run_query(request, lambda: [r.txn_id for r in ordered if keep(r)], render)

    def _txn_filters(self, request: etree._Element) -> Callable[[TransactionRecord], bool]:
        common = self._common_txn_filter(request)
        paid = _text(request, "PaidStatus") or "All"

        def keep(record: TransactionRecord) -> bool:
            if not common(
                record.customer, record.ref_number, record.txn_date, record.time_modified
            ):
                return False
            balance = record.balance
            if paid == "PaidOnly":
                return balance is not None and balance == 0
            if paid == "NotPaidOnly":
                return balance is not None and balance != 0
            return True

        return keep


def _drop_newer(ret: etree._Element, version: tuple[int, int]) -> None:
    for element in list(ret.iter()):
        needed = _NEWER_ELEMENTS.get(str(element.tag))
        parent = element.getparent()
        if needed is not None and needed > version and parent is not None:
            parent.remove(element)


def _line_amount(
    quantity: Decimal | None,
    rate: Decimal | None,
    rate_percent: Decimal | None,
    running: Decimal,
    item: ItemRecord | None,
) -> Decimal:
    """What QuickBooks computes when a line gives no Amount."""
    if rate_percent is not None:
        return running * rate_percent / 100
    price = rate if rate is not None else (item.stock.sales_price if item else Decimal(0))
    return (quantity if quantity is not None else Decimal(1)) * price


def _line_ret(
    tag: str, order: Sequence[str], line: TransactionLine, kind: TxnKind
) -> etree._Element:
    pairs: list[tuple[str, _Value]] = [
        ("TxnLineID", line.txn_line_id),
        ("Amount", _money(line.amount)),
        ("SalesTaxCodeRef", line.sales_tax_code),
    ]
    if line.item is not None and line.item_list_id is not None:
        pairs.append(("ItemRef", _ref(line.item_list_id, line.item)))
    if line.desc is not None:
        pairs.append(("Desc", line.desc))
    if line.quantity is not None:
        pairs.append(("Quantity", _quantity(line.quantity)))
    if line.rate is not None:
        pairs.append(("Rate", _price(line.rate)))
    elif line.rate_percent is not None:
        pairs.append(("RatePercent", _money(line.rate_percent)))
    if kind == "SalesOrder":
        pairs.extend((("Invoiced", "0"), ("IsManuallyClosed", "false")))
    pairs.extend(line.fields)
    return _ordered(tag, order, pairs)


def _txn_defaults(spec: _TxnSpec, record: TransactionRecord) -> list[tuple[str, _Value]]:
    """What QuickBooks fills in when the Add leaves it out."""
    given = {tag for tag, _ in record.fields}
    defaults: list[tuple[str, _Value]] = [("TemplateRef", spec.template)]
    if spec.ar_account:
        defaults.append(("ARAccountRef", _AR_ACCOUNT))
    if record.kind in ("Invoice", "SalesReceipt", "CreditMemo"):
        defaults.append(("IsPending", "false"))
    if record.kind == "Invoice":
        defaults.append(("IsFinanceCharge", "false"))
    if record.kind != "SalesReceipt" or "DueDate" in given:
        defaults.append(("DueDate", record.txn_date.isoformat()))
    if record.kind == "SalesReceipt":
        defaults.append(("DepositToAccountRef", _UNDEPOSITED))
    defaults.extend((("IsToBePrinted", "true"), ("IsToBeEmailed", "false")))
    return [(tag, value) for tag, value in defaults if tag not in given]


def _txn_totals(record: TransactionRecord) -> list[tuple[str, _Value]]:
    if record.kind == "Invoice":
        balance = record.balance or Decimal(0)
        return [
            ("AppliedAmount", _money(-record.applied)),
            ("BalanceRemaining", _money(balance)),
            ("IsPaid", _bool(balance == 0)),
        ]
    totals: list[tuple[str, _Value]] = [("TotalAmount", _money(record.total))]
    if record.kind == "CreditMemo":
        totals.append(("CreditRemaining", _money(record.total)))
    if record.kind == "SalesOrder":
        totals.extend((("IsManuallyClosed", "false"), ("IsFullyInvoiced", "false")))
    return totals
