"""ReceivePaymentAdd and ReceivePaymentQuery: payments and the invoices they pay."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _AR_ACCOUNT,
    _CENT,
    _NOT_IN_LIST,
    _UNDEPOSITED,
    _Answer,
    _check_lengths,
    _child,
    _children,
    _decimal,
    _edit_sequence,
    _money,
    _ordered,
    _parse_date,
    _ref,
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
    AppliedPayment,
    CustomerRecord,
    PaymentRecord,
)

_PAYMENT_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ARAccountRef TxnDate "
    "RefNumber TotalAmount PaymentMethodRef Memo DepositToAccountRef UnusedPayment "
    "UnusedCredits ExternalGUID AppliedToTxnRet"
)
_APPLIED_TO_TXN_RET = _tags("TxnID TxnType TxnDate RefNumber BalanceRemaining Amount")
_PAYMENT_LIMITS = {"RefNumber": 20, "Memo": 4095}


class PaymentRequests(Queries):
    """How QuickBooks answers the payment requests."""

    def _payment_add(self, request: etree._Element) -> _Answer:
        add = _required_child(request, "ReceivePaymentAdd")
        _check_lengths(add, _PAYMENT_LIMITS)
        customer = self._find_customer(_child(add, "CustomerRef"), "ReceivePayment")
        method = self._check_payment_method(_child(add, "PaymentMethodRef"), "ReceivePayment")
        now = self._clock()
        txn_id = self._new_txn_id(now)
        parts = self._applications(add, customer, txn_id)
        applied_total = sum((part.amount for part in parts), Decimal(0))
        stated = _decimal(_text(add, "TotalAmount"))
        total = stated if stated is not None else applied_total
        if applied_total > total:
            raise _Status(
                3180,
                "Error",
                "There was an error when saving a ReceivePayment.  QuickBooks error message: "
                "The amount applied is more than the payment amount.",
            )
        txn_date_text = _text(add, "TxnDate")
        record = PaymentRecord(
            txn_id=txn_id,
            txn_number=self._take_txn_number(),
            customer=customer.full_name,
            customer_list_id=customer.list_id,
            txn_date=_parse_date(txn_date_text) if txn_date_text else now.date(),
            ref_number=_text(add, "RefNumber"),
            total=total.quantize(_CENT, rounding=ROUND_HALF_UP),
            payment_method=dict(method)["FullName"] if method else None,
            memo=_text(add, "Memo"),
            applied=tuple(parts),
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
        )
        self._payments[txn_id] = record
        for part in parts:
            invoice = self._txns[part.invoice_txn_id]
            self._txns[invoice.txn_id] = replace(invoice, payments=(*invoice.payments, part))
        self._change_balance(customer.list_id, -record.total)
        return _Answer([self._payment_ret(record, applied=True)])

    def _applications(
        self, add: etree._Element, customer: CustomerRecord, payment_txn_id: str
    ) -> list[AppliedPayment]:
        if (_text(add, "IsAutoApply") or "").lower() in ("true", "1"):
            return self._auto_apply(add, customer, payment_txn_id)
        parts: list[AppliedPayment] = []
        for application in (c for c in _children(add) if c.tag == "AppliedToTxnAdd"):
            txn_id = _text(application, "TxnID") or ""
            invoice = self._txns.get(txn_id)
            if (
                invoice is None
                or invoice.kind != "Invoice"
                or invoice.customer_list_id != customer.list_id
            ):
                raise _Status(
                    3120,
                    "Error",
                    f'Object "{txn_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
                )
            amount = _decimal(_text(application, "PaymentAmount")) or Decimal(0)
            already = sum((p.amount for p in parts if p.invoice_txn_id == txn_id), Decimal(0))
            if amount + already > (invoice.balance or Decimal(0)):
                raise _Status(
                    3180,
                    "Error",
                    "There was an error when saving a ReceivePayment.  QuickBooks error message: "
                    f'The amount applied to "{invoice.ref_number}" is more than its balance.',
                )
            parts.append(AppliedPayment(payment_txn_id, txn_id, amount))
        return parts

    def _auto_apply(
        self, add: etree._Element, customer: CustomerRecord, payment_txn_id: str
    ) -> list[AppliedPayment]:
        left = _decimal(_text(add, "TotalAmount")) or Decimal(0)
        parts: list[AppliedPayment] = []
        open_invoices = sorted(
            (
                t
                for t in self._txns.values()
                if t.kind == "Invoice" and t.customer_list_id == customer.list_id and t.balance
            ),
            key=lambda t: (t.txn_date, t.txn_number),
        )
        for invoice in open_invoices:
            amount = min(left, invoice.balance or Decimal(0))
            if amount <= 0:
                break
            parts.append(AppliedPayment(payment_txn_id, invoice.txn_id, amount))
            left -= amount
        return parts

    def _payment_ret(self, record: PaymentRecord, *, applied: bool) -> etree._Element:
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", record.txn_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("TxnNumber", str(record.txn_number)),
            ("CustomerRef", _ref(record.customer_list_id, record.customer)),
            ("ARAccountRef", _AR_ACCOUNT),
            ("TxnDate", record.txn_date.isoformat()),
            ("TotalAmount", _money(record.total)),
            ("DepositToAccountRef", _UNDEPOSITED),
            ("UnusedPayment", _money(record.unused)),
            ("UnusedCredits", "0.00"),
        ]
        if record.ref_number is not None:
            pairs.append(("RefNumber", record.ref_number))
        if record.payment_method is not None:
            pairs.append(("PaymentMethodRef", self._payment_method_ref(record.payment_method)))
        if record.memo is not None:
            pairs.append(("Memo", record.memo))
        if applied and record.applied:
            pairs.append(("AppliedToTxnRet", [self._applied_ret(part) for part in record.applied]))
        return _ordered("ReceivePaymentRet", _PAYMENT_RET, pairs)

    def _applied_ret(self, part: AppliedPayment) -> etree._Element:
        invoice = self._txns[part.invoice_txn_id]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", invoice.txn_id),
            ("TxnType", "Invoice"),
            ("TxnDate", invoice.txn_date.isoformat()),
            ("BalanceRemaining", _money(invoice.balance or Decimal(0))),
            ("Amount", _money(part.amount)),
        ]
        if invoice.ref_number is not None:
            pairs.append(("RefNumber", invoice.ref_number))
        return _ordered("AppliedToTxnRet", _APPLIED_TO_TXN_RET, pairs)

    def _payment_query(self, request: etree._Element) -> _Answer:
        include = _text(request, "IncludeLineItems") in ("true", "1")

        def render(txn_id: str) -> etree._Element | None:
            payment = self._payments.get(txn_id)
            return self._payment_ret(payment, applied=include) if payment else None

        ordered = sorted(self._payments.values(), key=lambda p: p.txn_number)
        txn_ids = _texts(request, "TxnID")
        if txn_ids:
            return _by_txn_ids(txn_ids, set(self._payments), render)
        refs = {ref.lower() for ref in _texts(request, "RefNumber")}
        exact = set(_texts(request, "RefNumberCaseSensitive"))
        if refs or exact:
            found = [
                p.txn_id
                for p in ordered
                if (p.ref_number or "").lower() in refs or p.ref_number in exact
            ]
            return _answer_for(_render_all(found, render), None)
        keep = self._common_txn_filter(request)
        return self._run_query(
            request,
            lambda: [
                p.txn_id
                for p in ordered
                if keep(p.customer, p.ref_number, p.txn_date, p.time_modified)
            ],
            render,
        )
