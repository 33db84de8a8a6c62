"""Hypothesis strategies for valid JMAUser order JSON, reusable by every layer's tests.

``order_json()`` draws dicts that ``json.dumps`` can write as they are (money as strings or
whole numbers), with Unicode names (emoji, accents, ``&<>"'``), long names, both date forms,
any OrderType and optional payments; ``intake.parse_order`` accepts every one of them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import strategies as st

CENT = Decimal("0.01")
SKUS = (
    "WIDGET-RED",
    "WIDGET-BLUE",
    "GADGET-PRO",
    "GIZMO-XL",
    "TSHIRT-M",
    "TSHIRT-L",
    "MUG-CLASSIC",
    "BOOK-QB101",
)
_AWKWARD = ("&<>\"'", "Nguyễn", "Łukasz", "😀🎉", "Zoë & Søren", "O'Brien", "a:b", "中文", "  ")

_any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)
text = st.one_of(_any_text, st.sampled_from(_AWKWARD), st.text(max_size=200))
"""Any text a channel might send in a free-text field."""

non_blank_text = st.one_of(text, st.sampled_from(SKUS)).filter(lambda value: value.strip() != "")

order_number = st.one_of(
    st.from_regex(r"\A[0-9]{3}-[0-9]{7}-[0-9]{7}\Z"),
    st.integers(1, 10**9).map(str),
    st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=100),
).filter(lambda value: value.strip() != "")


def money(max_value: Decimal = Decimal("10000")) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=max_value, places=2)


def _money_json(value: Decimal) -> str | int:
    """JSON form of an amount: a string, or a whole number when it has no cents."""
    return int(value) if value == value.to_integral_value() and value < 1000 else str(value)


@st.composite
def date_json(draw: st.DrawFn, day: date | None = None) -> str:
    """``day`` (or any day) as ISO date, ISO date-time with offset, or .NET /Date(ms±hhmm)/."""
    chosen = day or draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    seconds = draw(st.integers(0, 86399))
    offset_minutes = draw(st.integers(-12 * 60, 14 * 60))
    local = datetime.combine(chosen, datetime.min.time()) + timedelta(seconds=seconds)
    form = draw(st.sampled_from(("date", "iso", "net")))
    if form == "date":
        return chosen.isoformat()
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    if form == "iso":
        return f"{local.isoformat()}{sign}{hours:02d}:{minutes:02d}"
    utc = local - timedelta(minutes=offset_minutes)
    epoch_ms = int((utc - datetime(1970, 1, 1)).total_seconds()) * 1000
    return f"/Date({epoch_ms}{sign}{hours:02d}{minutes:02d})/"


@st.composite
def _line(draw: st.DrawFn) -> dict[str, Any]:
    quantity = draw(
        st.one_of(
            st.integers(1, 50).map(Decimal),
            st.decimals(min_value=Decimal("0.001"), max_value=100, places=3),
        )
    )
    line: dict[str, Any] = {
        "name": draw(text),
        "sku": draw(non_blank_text),
        "quantity": int(quantity) if quantity == int(quantity) else str(quantity),
        "priceExclTax": _money_json(draw(money(Decimal("2000")))),
    }
    options = draw(st.lists(st.fixed_dictionaries({"name": text, "value": text}), max_size=3))
    if options:
        line["options"] = options
    return line


def _line_amount(line: dict[str, Any]) -> Decimal:
    """Half up, as channels and QuickBooks round (0.945 is 0.95, not the banker's 0.94)."""
    amount = Decimal(str(line["quantity"])) * Decimal(str(line["priceExclTax"]))
    return amount.quantize(CENT, ROUND_HALF_UP)


@st.composite
def _payments(draw: st.DrawFn, total: Decimal) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 3))
    payments: list[dict[str, Any]] = []
    left = total
    for _ in range(count):
        if left < CENT:
            break
        amount = draw(st.decimals(min_value=CENT, max_value=left, places=2))
        left -= amount
        payment: dict[str, Any] = {
            "PaymentAmount": _money_json(amount),
            "CreditCardName": draw(st.sampled_from(("Visa", "Cash", "MasterCard", ""))),
            "ReferenceNumber": draw(st.sampled_from(("", "REF-1", "PAY-0001", "x" * 30))),
        }
        if draw(st.booleans()):
            payment["PaymentDate"] = draw(date_json())
        payments.append(payment)
    return payments


def _vary_case(key: str, how: int) -> str:
    return (key, key.lower(), key.upper(), key[:1].swapcase() + key[1:])[how]


def _recase(value: Any, draw: st.DrawFn) -> Any:
    if isinstance(value, dict):
        how = draw(st.integers(0, 3))
        return {_vary_case(k, how): _recase(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [_recase(item, draw) for item in value]
    return value


_address = st.fixed_dictionaries(
    {},
    optional={
        "firstName": text,
        "lastName": text,
        "fullName": text,
        "company": text,
        "address1": text,
        "address2": text,
        "city": text,
        "regionName": text,
        "postalCode": text,
        "countryName": text,
        "twoLetterIsoCode": st.sampled_from(("US", "GB", "DE", "VN")),
        "email": text,
        "phoneNumber": text,
    },
)


@st.composite
def order_json(draw: st.DrawFn, *, max_lines: int = 20, vary_case: bool = False) -> dict[str, Any]:
    """A valid JMAUser order (1..max_lines lines); ``vary_case`` respells keys at random."""
    lines = draw(st.lists(_line(), min_size=1, max_size=max_lines))
    lines_total = sum((_line_amount(line) for line in lines), Decimal("0"))
    shipping = draw(money(Decimal("500")))
    discount = draw(st.decimals(min_value=0, max_value=lines_total + shipping, places=2))
    tax = draw(money(Decimal("1000")))
    computed = lines_total + shipping - discount + tax
    total = max(Decimal("0.00"), computed + draw(st.sampled_from((Decimal("0"), CENT, -CENT))))
    order: dict[str, Any] = {
        "OrderNumber": draw(order_number),
        "OrderDate": draw(date_json()),
        "OrderType": draw(st.integers(0, 6)),
        "CustomerName": draw(non_blank_text),
        "orderDetails": lines,
        "TotalTax": _money_json(tax),
        "OrderTotal": _money_json(total),
        "ChannelName": draw(st.sampled_from(("Shopify", "Amazon", "eBay", ""))),
        "ShippingMethod": draw(text),
        "creditCardName": draw(st.sampled_from(("Visa", "PayPal", "Amazon Pay", ""))),
    }
    if shipping:
        order["ShippingExclTax"] = _money_json(shipping)
    if discount:
        order["discountExclTax"] = _money_json(discount)
    for key in ("billingAddress", "shippingAddress"):
        if draw(st.booleans()):
            order[key] = draw(_address)
    payments = draw(_payments(total))
    if payments:
        order["Payments"] = payments
    return _recase(order, draw) if vary_case else order


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 of an aware datetime, as the .NET /Date()/ form carries it."""
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
