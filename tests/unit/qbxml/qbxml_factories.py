"""Records for the qbXML tests: one typical of each kind, and hypothesis strategies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.records import (
    CustomerRecord,
    PaymentRecord,
    QbAddress,
    TxnLine,
    TxnRecord,
)
from qbwc_bridge.domain.text import qb_text

ADDRESS = QbAddress(
    addr1="Jane Doe",
    addr2="1 Main Street",
    addr3="Suite 5",
    addr4="c/o Reception",
    addr5="Building B",
    city="Springfield",
    state="IL",
    postal_code="62704",
    country="USA",
)


def customer() -> CustomerRecord:
    return CustomerRecord(
        name="Doe, Jane",
        company_name="Doe & Sons <Ltd>",
        first_name="Jane",
        last_name="Doe",
        bill_address=ADDRESS,
        ship_address=ADDRESS,
        phone="555-0100",
        email="jane@example.com",
    )


def txn(kind: TxnKind = TxnKind.INVOICE, lines: int = 2) -> TxnRecord:
    items = tuple(
        TxnLine(
            item=f"SKU-{n}",
            amount=Decimal("21.00"),
            desc=f"Shirt {n} (size M)",
            quantity=Decimal("2"),
            rate=Decimal("10.5"),
        )
        for n in range(lines)
    )
    return TxnRecord(
        kind=kind,
        order_number="112-1234567-1234567",
        customer_name="Doe, Jane",
        txn_date=date(2024, 5, 1),
        ref_number="567-1234567",
        lines=(*items, TxnLine(item="Shipping", amount=Decimal("4.95"), desc="UPS Ground")),
        po_number="112-1234567-1234567",
        memo="Amazon order 112-1234567-1234567",
        bill_address=ADDRESS,
        ship_address=ADDRESS,
        ship_method="UPS",
        payment_method="Visa",
    )


def payment(**changes: object) -> PaymentRecord:
    values: dict[str, object] = {
        "customer_name": "Doe, Jane",
        "txn_date": date(2024, 5, 2),
        "total_amount": Decimal("46.95"),
        "applied_to_txn_id": "C5-1417118624",
        "ref_number": "ch_3PabcDEF",
        "payment_method": "Visa",
        "memo": "Stripe",
    }
    values.update(changes)
    return PaymentRecord(**values)  # type: ignore[arg-type]


# --- strategies ----------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        "&<>\"'",
        "😀 emoji",
        "Nguyễn Łukasz",
        "\u2028line\u2029",
        "tab\tnew\nline",
        "‐—“”",
        "x" * 5000,
    ]
)
# Records hold QuickBooks text: the mapping folded it (domain/records.py).
TEXT = st.one_of(st.text(max_size=40), NASTY, st.text(min_size=100, max_size=300)).map(qb_text)
LINE_TEXT = st.one_of(st.text(max_size=20), NASTY).map(qb_text)
NAME = TEXT.filter(lambda value: bool(qb_text(value).strip()))
AMOUNT = st.decimals(min_value=-(10**9), max_value=10**9, places=2)
QUANTITY = st.decimals(min_value=-(10**6), max_value=10**6, places=5).filter(
    lambda value: value != 0
)
RATE = st.decimals(min_value=-(10**6), max_value=10**6, places=5)
ADDRESSES = st.builds(
    QbAddress,
    addr1=TEXT,
    addr2=TEXT,
    addr3=TEXT,
    addr4=TEXT,
    addr5=TEXT,
    city=TEXT,
    state=TEXT,
    postal_code=TEXT,
    country=TEXT,
)
CUSTOMERS = st.builds(
    CustomerRecord,
    name=NAME,
    company_name=TEXT,
    first_name=TEXT,
    last_name=TEXT,
    bill_address=ADDRESSES,
    ship_address=ADDRESSES,
    phone=TEXT,
    email=TEXT,
)
LINES = st.builds(
    TxnLine,
    item=LINE_TEXT.filter(lambda value: bool(qb_text(value).strip())),
    amount=AMOUNT,
    desc=LINE_TEXT,
    quantity=st.none() | QUANTITY,
    rate=st.none() | RATE,
)
DATES = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31))
TXNS = st.builds(
    TxnRecord,
    kind=st.sampled_from(TxnKind),
    order_number=TEXT,
    customer_name=NAME,
    txn_date=DATES,
    ref_number=TEXT,
    lines=st.lists(LINES, min_size=1, max_size=500).map(tuple),
    po_number=TEXT,
    memo=TEXT,
    bill_address=ADDRESSES,
    ship_address=ADDRESSES,
    ship_method=TEXT,
    payment_method=TEXT,
)
TXN_IDS = st.from_regex(r"[0-9A-F]{1,8}-[0-9]{10}", fullmatch=True)
PAYMENTS = st.builds(
    PaymentRecord,
    customer_name=NAME,
    txn_date=DATES,
    total_amount=AMOUNT,
    applied_to_txn_id=st.just("") | TXN_IDS,
    ref_number=TEXT,
    payment_method=TEXT,
    memo=TEXT,
    customer_list_id=st.just("") | TXN_IDS,
)
