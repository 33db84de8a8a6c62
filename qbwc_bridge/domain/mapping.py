"""The docs/order-format.md rules: a validated Order becomes the records QuickBooks stores."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from qbwc_bridge.domain import customers
from qbwc_bridge.domain.company import CompanySettings, InvalidSetting
from qbwc_bridge.domain.orders import Order, OrderLine, OrderType, Payment, TxnKind
from qbwc_bridge.domain.posting import NO_MAPPINGS, MappingKind, Mappings
from qbwc_bridge.domain.records import NonInventoryItemRecord, PaymentRecord, TxnLine, TxnRecord
from qbwc_bridge.domain.text import FIELD_LIMITS, fit, fit_line, qb_text

_TXN_TYPES = {
    "invoice": TxnKind.INVOICE,
    "sales_receipt": TxnKind.SALES_RECEIPT,
    "sales_order": TxnKind.SALES_ORDER,
}
_REFUND_TYPES = {"credit_memo": TxnKind.CREDIT_MEMO}
_FIXED_KINDS = {
    OrderType.INVOICE: TxnKind.INVOICE,
    OrderType.CREDIT_MEMO: TxnKind.CREDIT_MEMO,
    OrderType.SALES_ORDER: TxnKind.SALES_ORDER,
    OrderType.SALES_RECEIPT: TxnKind.SALES_RECEIPT,
}
_REFUNDS = (OrderType.WEB_REFUND, OrderType.REFUND_RECEIPT)
ITEM_LIMIT = FIELD_LIMITS["FullName"]


def txn_kind(order: Order, settings: CompanySettings, mappings: Mappings = NO_MAPPINGS) -> TxnKind:
    """The QuickBooks transaction for the order's OrderType and the company's settings (a
    web order's channel may be mapped to its own txn-type)."""
    if order.order_type in _FIXED_KINDS:
        return _FIXED_KINDS[order.order_type]
    if order.order_type in _REFUNDS:
        return _setting_kind(_REFUND_TYPES, "refund_type", settings.refund_type)
    mapped = mappings.txn_type(order.channel_name)
    return _setting_kind(_TXN_TYPES, "txn_type", mapped or settings.txn_type)


def _setting_kind(kinds: dict[str, TxnKind], key: str, value: str) -> TxnKind:
    if value not in kinds:
        raise InvalidSetting(f"{key} must be one of {', '.join(kinds)}, not {value!r}")
    return kinds[value]


def payments_apply(kind: TxnKind) -> bool:
    """Only an invoice is paid by ReceivePaymentAdd; other kinds carry their payment or none."""
    return kind is TxnKind.INVOICE


class TxnRefs(NamedTuple):
    """How a transaction carries its order number: the check asks by the RefNumber and
    confirms a hit by the PONumber the add wrote."""

    ref_number: str
    po_number: str


def txn_refs(order_number: str) -> TxnRefs:
    """RefNumber (11 max): the folded order number, or its last 11 characters when longer;
    PONumber: empty when RefNumber holds the whole number, else the number (last 25)."""
    folded = qb_text(order_number).strip()
    ref_limit, po_limit = FIELD_LIMITS["RefNumber"], FIELD_LIMITS["PONumber"]
    if len(folded) <= ref_limit:
        return TxnRefs(folded, "")
    po_number = folded if len(folded) <= po_limit else folded[-po_limit:].strip()
    return TxnRefs(folded[-ref_limit:].strip(), po_number)


def order_memo(order: Order) -> str:
    """The Memo that names the channel and the full order number: "Amazon order 112-..."."""
    channel = order.channel_name.strip()
    memo = f"{channel} order {order.order_number}" if channel else f"Order {order.order_number}"
    return fit_line(memo, FIELD_LIMITS["Memo"])


def payment_memo(order: Order) -> str:
    channel = order.channel_name.strip()
    label = f"{channel} order" if channel else "order"
    return fit_line(f"Payment for {label} {order.order_number}", FIELD_LIMITS["Memo"])


def line_description(line: OrderLine) -> str:
    """Desc: the line's name followed by its options, e.g. "T-shirt (Size: L, Colour: Blue)"."""
    options = [
        ": ".join(part for part in (option.name.strip(), option.value.strip()) if part)
        for option in line.options
    ]
    chosen = ", ".join(option for option in options if option)
    text = f"{line.name.strip()} ({chosen})" if chosen else line.name.strip()
    return fit(text.strip(), FIELD_LIMITS["Desc"])


def _detail_line(line: OrderLine, mappings: Mappings, class_ref: str) -> TxnLine:
    return TxnLine(
        item=mappings.item(line.sku),
        desc=line_description(line),
        quantity=line.quantity,
        rate=line.price_excl_tax,
        amount=line.amount,
        class_ref=class_ref,
    )


def _with_class(lines: list[TxnLine], class_ref: str) -> list[TxnLine]:
    if not class_ref:
        return lines
    return [
        TxnLine(line.item, line.amount, line.desc, line.quantity, line.rate, class_ref)
        for line in lines
    ]


def _charge_lines(order: Order, settings: CompanySettings) -> list[TxnLine]:
    """Shipping, discount (negative) and a tax line that makes the total exactly OrderTotal."""
    charges: list[TxnLine] = []
    if order.shipping_excl_tax:
        desc = fit(order.shipping_method, FIELD_LIMITS["Desc"]) or "Shipping"
        charges.append(
            TxnLine(fit(settings.shipping_item, ITEM_LIMIT), order.shipping_excl_tax, desc)
        )
    if order.discount_excl_tax:
        item = fit(settings.discount_item, ITEM_LIMIT)
        charges.append(TxnLine(item, -order.discount_excl_tax, "Discount"))
    lines_total = sum((line.amount for line in order.lines), Decimal("0"))
    before_tax = lines_total + sum((charge.amount for charge in charges), Decimal("0"))
    # Intake allowed OrderTotal to differ from the parts by a cent: the tax line absorbs it,
    # so QuickBooks' total is the OrderTotal the channel charged.
    tax = order.order_total - before_tax
    if tax:
        charges.append(TxnLine(fit(settings.tax_item, ITEM_LIMIT), tax, "Sales tax"))
    return charges


def txn_record(
    order: Order, settings: CompanySettings, mappings: Mappings = NO_MAPPINGS
) -> TxnRecord:
    """The sales transaction for ``order``; its total equals OrderTotal to the cent.

    The company's mappings rename its items, payment method, ship method and class;
    without a mapping no ShipMethodRef or ClassRef is sent.
    """
    kind = txn_kind(order, settings, mappings)
    refs = txn_refs(order.order_number)
    payment_method = ""
    if kind is TxnKind.SALES_RECEIPT:
        payment_method = mappings.payment_method(order.credit_card_name)
    class_ref = mappings.class_name(order.channel_name)
    return TxnRecord(
        kind=kind,
        order_number=order.order_number,
        customer_name=customers.customer_name(order, settings.customer_match),
        txn_date=order.order_date,
        ref_number=refs.ref_number,
        po_number=refs.po_number,
        memo=order_memo(order),
        lines=(
            *(_detail_line(line, mappings, class_ref) for line in order.lines),
            *_with_class(_charge_lines(order, settings), class_ref),
        ),
        bill_address=customers.qb_address(order.billing_address),
        ship_address=customers.qb_address(order.shipping_address),
        ship_method=fit_line(order.shipping_method, FIELD_LIMITS["ShipMethod"]),
        payment_method=payment_method,
        ship_method_ref=mappings.ship_method(order.shipping_method),
        class_ref=class_ref,
    )


def payment_record(
    order: Order,
    payment: Payment,
    *,
    customer_name: str,
    applied_to_txn_id: str,
    customer_list_id: str = "",
    mappings: Mappings = NO_MAPPINGS,
) -> PaymentRecord:
    """The ReceivePaymentAdd of one JMAPayment, applied to the order's invoice.

    ``customer_name`` is the invoice's customer as QuickBooks has it (a full name, which may
    hold a colon for a job), so it is folded and cut to FullName's limit, not renamed.
    """
    return PaymentRecord(
        customer_name=fit(customer_name, FIELD_LIMITS["CustomerFullName"]),
        txn_date=payment.payment_date,
        total_amount=payment.amount,
        applied_to_txn_id=applied_to_txn_id,
        ref_number=fit_line(payment.reference_number, FIELD_LIMITS["PaymentRefNumber"]),
        payment_method=mappings.payment_method(payment.credit_card_name),
        memo=payment_memo(order),
        customer_list_id=customer_list_id,
    )


def unmapped_items(order: Order, mappings: Mappings) -> list[OrderLine]:
    """The order's lines whose SKU no mapping renames, the first line of each item name: the
    items a run may create when QuickBooks lacks them (a mapped item is never created: a
    mistyped mapping must not become an item)."""
    found: dict[str, OrderLine] = {}
    for line in order.lines:
        if mappings.target(MappingKind.SKU, line.sku) is None:
            found.setdefault(mappings.item(line.sku).casefold(), line)
    return list(found.values())


def item_record(line: OrderLine, account: str) -> NonInventoryItemRecord:
    """The ItemNonInventoryAdd of an unknown SKU: named after it, with the line's
    description and price, on the company's income account."""
    return NonInventoryItemRecord(
        name=fit(line.sku, ITEM_LIMIT),
        account=fit(account, FIELD_LIMITS["FullName"]),
        desc=line_description(line),
        price=line.price_excl_tax,
    )
