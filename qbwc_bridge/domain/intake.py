"""JMAUser order JSON in, validated Order out: every rule of docs/order-format.md lives here."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from qbwc_bridge.domain.orders import Address, LineOption, Order, OrderLine, OrderType, Payment
from qbwc_bridge.errors import OrderRejected

MAX_ORDER_NUMBER_LENGTH = 100
MAX_LINES = 500
TOTAL_TOLERANCE = Decimal("0.01")
CENT = Decimal("0.01")
# QuickBooks' AMTTYPE/QUANTYPE cannot hold more; also keeps Decimal arithmetic exact.
MAX_AMOUNT = Decimal("9999999999.99")
MAX_QUANTITY = Decimal("9999999")
QUANTITY_PLACES = 5

_NET_DATE = re.compile(r"^/Date\((-?\d{1,15})([+-]\d{4})?\)/$")
_JSON_TYPE_NAMES = {
    dict: "a JSON object",
    list: "a JSON array",
    bool: "true/false",
    str: "a string",
    int: "a number",
    float: "a number",
    Decimal: "a number",
    type(None): "null",
}

_ORDER_TYPES = frozenset(int(kind) for kind in OrderType)
_ORDER_TYPE_CODES = {str(int(kind)): kind for kind in OrderType}

_ADDRESS_FIELDS = {
    "address1": "address1",
    "address2": "address2",
    "city": "city",
    "company": "company",
    "countryName": "country_name",
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "fullName": "full_name",
    "phoneNumber": "phone_number",
    "postalCode": "postal_code",
    "regionName": "region_name",
    "twoLetterIsoCode": "two_letter_iso_code",
}

T = TypeVar("T")


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass
class _Problems:
    """Collects every problem of one order, so all can be listed and the first raised."""

    order_number: str
    found: list[OrderRejected] = field(default_factory=list)

    def add(self, path: str, problem: str) -> None:
        self.found.append(OrderRejected(self.order_number, path, problem))


_FOLDED: dict[str, str] = {}  # the code's own field names, folded once


def _fold_key(key: str) -> str:
    folded = _FOLDED[key] = key.casefold()
    return folded


class _Fields:
    """One JSON object read with case-insensitive keys; paths name fields for messages."""

    def __init__(self, raw: Mapping[str, object], prefix: str, problems: _Problems) -> None:
        self.prefix = prefix
        self.problems = problems
        self._values: dict[str, object] = {key.casefold(): value for key, value in raw.items()}
        if len(self._values) == len(raw):
            return  # the usual case: every key spelled once
        self._values = {}
        spelled: dict[str, str] = {}
        for key, value in raw.items():
            folded = key.casefold()
            if folded in self._values and self._values[folded] != value:
                problems.add(
                    self.path(key),
                    f"given twice, as {_excerpt(spelled[folded])} and {_excerpt(key)}, "
                    "with different values; send it once",
                )
            self._values.setdefault(folded, value)
            spelled.setdefault(folded, key)

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def get(self, key: str) -> object:
        """The value under ``key`` in any letter case; None when absent or null."""
        return self._values.get(_FOLDED.get(key) or _fold_key(key))

    def wrong_type(self, key: str, expected: str, value: object) -> None:
        self.problems.add(self.path(key), f"must be {expected}, not {_json_type(value)}")


def _fields_of(value: object, path: str, problems: _Problems) -> _Fields | None:
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return _Fields(value, f"{path}.", problems)
    problems.add(path, f"must be a JSON object, not {_json_type(value)}")
    return None


def _text(fields: _Fields, key: str, *, required: bool = False) -> str:
    """A string field; whole numbers are accepted too (channels send numeric SKUs and numbers)."""
    value = fields.get(key)
    if value is None:
        if required:
            fields.problems.add(fields.path(key), "is required")
        return ""
    value = _whole_number_text(value) or value
    if not isinstance(value, str):
        fields.wrong_type(key, "a string", value)
        return ""
    if required and not value.strip():
        fields.problems.add(fields.path(key), "must not be empty")
    return value


def _number(fields: _Fields, key: str) -> Decimal | None:
    """A JSON number or numeric string as an exact Decimal; None (and a problem) otherwise."""
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        fields.wrong_type(key, "a number", value)
        return None
    try:
        text = value.strip() if isinstance(value, str) else str(value)
        number = Decimal(text)
    except ValueError:
        fields.problems.add(fields.path(key), "has too many digits to be an amount")
        return None
    except InvalidOperation:
        fields.problems.add(
            fields.path(key), f"must be a number such as 12.50, not {_excerpt(text)}"
        )
        return None
    if not number.is_finite():
        fields.problems.add(fields.path(key), f"must be a finite number, not {_excerpt(text)}")
        return None
    return number


def _money(
    fields: _Fields, key: str, *, required: bool = False, positive: bool = False
) -> Decimal | None:
    """Money: at most two decimal places, not negative (or above zero when ``positive``)."""
    if fields.get(key) is None:
        if required:
            fields.problems.add(fields.path(key), "is required")
        return None
    number = _number(fields, key)
    if number is None:
        return None
    path = fields.path(key)
    if abs(number) > MAX_AMOUNT:
        fields.problems.add(path, f"{number} is larger than QuickBooks allows ({MAX_AMOUNT})")
        return None
    if number != number.quantize(CENT):
        fields.problems.add(path, f"{number} has more than 2 decimal places")
        return None
    if positive and number <= 0:
        fields.problems.add(path, f"must be greater than 0, not {number}")
        return None
    if number < 0:
        fields.problems.add(path, f"must not be negative, not {number}")
        return None
    return abs(number.quantize(CENT))


def _quantity(fields: _Fields, key: str, *, required: bool, positive: bool) -> Decimal | None:
    if fields.get(key) is None:
        if required:
            fields.problems.add(fields.path(key), "is required")
        return None
    number = _number(fields, key)
    if number is None:
        return None
    path = fields.path(key)
    if positive and number <= 0:
        advice = "; a refund is sent as OrderType 1 with positive quantities" if number < 0 else ""
        fields.problems.add(path, f"must be greater than 0, not {number}{advice}")
        return None
    if number < 0:
        fields.problems.add(path, f"must not be negative, not {number}")
        return None
    if number > MAX_QUANTITY:
        fields.problems.add(path, f"{number} is larger than QuickBooks allows ({MAX_QUANTITY})")
        return None
    if number != round(number, QUANTITY_PLACES):
        fields.problems.add(path, f"{number} has more than {QUANTITY_PLACES} decimal places")
        return None
    return _plain(number)


def _plain(number: Decimal) -> Decimal:
    """One spelling per quantity (2.0 and 2 are the same), never in exponent form."""
    return Decimal(format(number.normalize(), "f"))


def parse_date(text: str) -> date:
    """The date of an ISO 8601 or .NET ``/Date(ms±hhmm)/`` value, as the sender's clock read it.

    Raises ValueError with a message a person can act on.
    """
    stripped = text.strip()
    match = _NET_DATE.match(stripped)
    if match:
        return _net_date(int(match.group(1)), match.group(2))
    try:
        if len(stripped) in (8, 10):
            return date.fromisoformat(stripped)
        return datetime.fromisoformat(stripped).date()
    except ValueError:
        raise ValueError(
            f"{_excerpt(text)} is not a date: use ISO 8601 (2017-05-09 or "
            "2017-05-09T14:38:32+02:00) or /Date(1494338312000)/"
        ) from None


def _net_date(milliseconds: int, offset: str | None) -> date:
    shift = timedelta(0)
    if offset:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if minutes >= 60 or hours > 14:
            raise ValueError(f"/Date()/ offset {offset} is not a valid UTC offset")
        shift = sign * timedelta(hours=hours, minutes=minutes)
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=milliseconds) + shift
    except OverflowError:
        raise ValueError(f"/Date({milliseconds})/ is outside the calendar") from None
    return moment.date()


def parse_instant(text: str) -> datetime | None:
    """The moment (UTC) an OrderDate names, when it names one: an ISO 8601 date and time
    with a UTC offset, or a .NET ``/Date(ms)/``. None for a date alone or a time without an
    offset (the sender's clock in no known zone): such an order's day is its date as given."""
    stripped = text.strip()
    match = _NET_DATE.match(stripped)
    try:
        if match:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
            return moment
        if len(stripped) in (8, 10):
            return None
        parsed = datetime.fromisoformat(stripped)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.astimezone(UTC)


def _date(fields: _Fields, key: str, *, default: date | None = None) -> date | None:
    value = fields.get(key)
    if value is None:
        if default is None:
            fields.problems.add(fields.path(key), "is required")
        return default
    if not isinstance(value, str):
        fields.wrong_type(key, "a date string", value)
        return None
    try:
        return parse_date(value)
    except ValueError as error:
        fields.problems.add(fields.path(key), str(error))
        return None


def _list(fields: _Fields, key: str) -> list[object]:
    value = fields.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        fields.wrong_type(key, "a JSON array", value)
        return []
    return value


def _each(fields: _Fields, key: str, read: Callable[[_Fields], T | None]) -> Iterator[T | None]:
    """Read every object of the array under ``key``; None marks an element that failed."""
    for index, element in enumerate(_list(fields, key)):
        element_fields = _fields_of(element, f"{fields.path(key)}[{index}]", fields.problems)
        yield None if element_fields is None else read(element_fields)


def _order_number(fields: _Fields) -> str:
    """The order's key in the queue, in Unicode's composed form (NFC): "é" sent as one
    character or as "e" and an accent is one order, not two."""
    return _identifier(fields, "OrderNumber", required=True, compose=True)


def _identifier(fields: _Fields, key: str, *, required: bool = False, compose: bool = False) -> str:
    """An order number or payment reference: a key the queue stores and matches on."""
    value = _text(fields, key, required=required)
    path = fields.path(key)
    if not value.isascii():
        if any(unicodedata.category(char) == "Cs" for char in value):
            # JSON can spell half of a surrogate pair ("\ud800"); no database can store it.
            fields.problems.add(path, "must be valid Unicode text, not a lone surrogate")
            return value
        if compose:
            value = unicodedata.normalize("NFC", value)
    if len(value) > MAX_ORDER_NUMBER_LENGTH:
        fields.problems.add(
            path, f"has {len(value)} characters; at most {MAX_ORDER_NUMBER_LENGTH} are allowed"
        )
    if any(unicodedata.category(char) == "Cc" for char in value):
        fields.problems.add(path, "must not contain control characters (tabs, line breaks, ...)")
    return value


def _order_type(fields: _Fields) -> OrderType:
    value = fields.get("OrderType")
    if value is None:
        return OrderType.WEB_ORDER
    if isinstance(value, str) and value.strip() in _ORDER_TYPE_CODES:
        return _ORDER_TYPE_CODES[value.strip()]
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value in _ORDER_TYPES:
        return OrderType(int(value))
    codes = ", ".join(f"{kind.value} {kind.name}" for kind in OrderType)
    fields.problems.add(fields.path("OrderType"), f"must be one of {codes}; got {_excerpt(value)}")
    return OrderType.WEB_ORDER


def _excerpt(value: object) -> str:
    """A short rendering of a sent value for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int):
        return _whole_number_text(value) or "a number with too many digits"
    if isinstance(value, Decimal):
        return str(value)
    return _json_type(value)


def _address(fields: _Fields, key: str) -> Address:
    value = fields.get(key)
    if value is None:
        return Address()
    address_fields = _fields_of(value, fields.path(key), fields.problems)
    if address_fields is None:
        return Address()
    return Address(**{attr: _text(address_fields, name) for name, attr in _ADDRESS_FIELDS.items()})


def _option(fields: _Fields) -> LineOption:
    return LineOption(
        name=_text(fields, "name"),
        value=_text(fields, "value"),
        sku=_text(fields, "sku"),
        quantity=_quantity(fields, "quantity", required=False, positive=False),
    )


def _line(fields: _Fields) -> OrderLine | None:
    sku = _text(fields, "sku", required=True)
    name = _text(fields, "name")
    quantity = _quantity(fields, "quantity", required=True, positive=True)
    price = _money(fields, "priceExclTax", required=True)
    price_incl = _money(fields, "priceInclTax")
    options = list(_each(fields, "options", _option))
    if quantity is None or price is None or None in options:
        return None
    return OrderLine(
        sku=sku,
        name=name,
        quantity=quantity,
        price_excl_tax=price,
        price_incl_tax=price_incl,
        options=tuple(option for option in options if option is not None),
    )


def _lines(fields: _Fields) -> list[OrderLine | None]:
    key = "orderDetails"
    value = fields.get(key)
    count = len(value) if isinstance(value, list) else 0
    if value is None:
        fields.problems.add(fields.path(key), "is required: an order needs at least one line")
    elif isinstance(value, list) and count == 0:
        fields.problems.add(fields.path(key), "must hold at least one line")
    if count > MAX_LINES:
        fields.problems.add(
            fields.path(key), f"has {count} lines; at most {MAX_LINES} are allowed per order"
        )
    return list(_each(fields, key, _line))


def _payment_reader(order_date: date | None) -> Callable[[_Fields], Payment | None]:
    def read(fields: _Fields) -> Payment | None:
        amount = _money(fields, "PaymentAmount", required=True, positive=True)
        when = _date(fields, "PaymentDate", default=order_date or date.min)
        card = _text(fields, "CreditCardName")
        reference = _identifier(fields, "ReferenceNumber")
        if amount is None or when is None:
            return None
        return Payment(
            amount=amount, payment_date=when, credit_card_name=card, reference_number=reference
        )

    return read


def _check_total(fields: _Fields, order: Order) -> None:
    computed = order.computed_total
    difference = order.order_total - computed
    if abs(difference) > TOTAL_TOLERANCE:
        lines = computed - order.shipping_excl_tax + order.discount_excl_tax - order.total_tax
        fields.problems.add(
            fields.path("OrderTotal"),
            f"OrderTotal {order.order_total} does not match the computed total {computed} "
            f"(difference {difference}): lines {lines} + shipping {order.shipping_excl_tax} "
            f"- discount {order.discount_excl_tax} + tax {order.total_tax}",
        )


def _check_payments(fields: _Fields, order: Order) -> None:
    paid = sum((payment.amount for payment in order.payments), Decimal("0"))
    if paid > order.order_total + TOTAL_TOLERANCE:
        fields.problems.add(
            fields.path("Payments"),
            f"payments total {paid} exceed OrderTotal {order.order_total}",
        )


def _whole_number_text(value: object) -> str | None:
    """A JSON whole number as text (channels send numeric order numbers and SKUs)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**100:
        return str(value)
    return None


def _raw_order_number(raw: Mapping[str, object]) -> str:
    """The OrderNumber as sent, to name the order in its problems even when it is invalid."""
    for key, value in raw.items():
        if key.casefold() == "ordernumber":
            text = (value if isinstance(value, str) else _whole_number_text(value)) or ""
            cut = text[:MAX_ORDER_NUMBER_LENGTH]
            return cut if cut == text else f"{cut}..."
    return ""


def _read_order(raw: object) -> tuple[Order | None, list[OrderRejected]]:
    """The one pass over an order: the Order when valid, and every problem found."""
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        problem = f"each order must be a JSON object, not {_json_type(raw)}"
        return None, [OrderRejected("", "order", problem)]
    problems = _Problems(_raw_order_number(raw))
    fields = _Fields(raw, "", problems)
    order_number = _order_number(fields)
    order_date = _date(fields, "OrderDate")
    order_type = _order_type(fields)
    customer_name = _text(fields, "CustomerName", required=True)
    billing = _address(fields, "billingAddress")
    shipping = _address(fields, "shippingAddress")
    money_problems_before = len(problems.found)
    lines = _lines(fields)
    shipping_excl = _money(fields, "ShippingExclTax")
    shipping_incl = _money(fields, "ShippingInclTax")
    discount_excl = _money(fields, "discountExclTax")
    discount_incl = _money(fields, "discountInclTax")
    total_tax = _money(fields, "TotalTax", required=True)
    order_total = _money(fields, "OrderTotal", required=True)
    money_valid = len(problems.found) == money_problems_before
    payments = list(_each(fields, "Payments", _payment_reader(order_date)))
    shipping_method = _text(fields, "ShippingMethod")
    channel = _text(fields, "ChannelName")
    card = _text(fields, "creditCardName")
    if not money_valid or order_date is None or total_tax is None or order_total is None:
        return None, problems.found
    sent_date = fields.get("OrderDate")
    order = Order(
        order_number=order_number,
        order_date=order_date,
        customer_name=customer_name,
        lines=tuple(line for line in lines if line is not None),
        total_tax=total_tax,
        order_total=order_total,
        order_type=order_type,
        billing_address=billing,
        shipping_address=shipping,
        shipping_method=shipping_method,
        shipping_excl_tax=shipping_excl or Decimal("0.00"),
        shipping_incl_tax=shipping_incl,
        discount_excl_tax=discount_excl or Decimal("0.00"),
        discount_incl_tax=discount_incl,
        channel_name=channel,
        credit_card_name=card,
        payments=tuple(payment for payment in payments if payment is not None),
        ordered_at=parse_instant(sent_date) if isinstance(sent_date, str) else None,
    )
    _check_total(fields, order)
    if None not in payments:
        _check_payments(fields, order)
    return (None if problems.found else order), problems.found


def read_order(raw: object) -> tuple[Order | None, list[OrderRejected]]:
    """The order, or None with every problem found (one pass, for bulk intake)."""
    return _read_order(raw)


def parse_order(raw: object) -> Order:
    """The validated Order of one decoded JSON order; raises the first OrderRejected."""
    order, problems = _read_order(raw)
    if problems:
        raise problems[0]
    assert order is not None
    return order


# Canonical form: what the store keeps and what fingerprints are taken of.


def _money_text(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _optional_money(value: Decimal | None) -> str | None:
    return None if value is None else _money_text(value)


def _quantity_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _address_to_dict(address: Address) -> dict[str, str]:
    return {attr: getattr(address, attr) for attr in _ADDRESS_FIELDS.values()}


def _line_to_dict(line: OrderLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "name": line.name,
        "quantity": _quantity_text(line.quantity),
        "price_excl_tax": _money_text(line.price_excl_tax),
        "price_incl_tax": _optional_money(line.price_incl_tax),
        "options": [
            {
                "name": option.name,
                "value": option.value,
                "sku": option.sku,
                "quantity": None if option.quantity is None else _quantity_text(option.quantity),
            }
            for option in line.options
        ],
    }


def order_to_dict(order: Order) -> dict[str, Any]:
    """The canonical JSON-ready form: money as 2-place strings, dates ISO, enums as codes;
    ``ordered_at`` (UTC, ISO) only when the order has a moment."""
    data: dict[str, Any] = {
        "order_number": order.order_number,
        "order_date": order.order_date.isoformat(),
        "order_type": int(order.order_type),
        "customer_name": order.customer_name,
        "billing_address": _address_to_dict(order.billing_address),
        "shipping_address": _address_to_dict(order.shipping_address),
        "lines": [_line_to_dict(line) for line in order.lines],
        "shipping_method": order.shipping_method,
        "shipping_excl_tax": _money_text(order.shipping_excl_tax),
        "shipping_incl_tax": _optional_money(order.shipping_incl_tax),
        "discount_excl_tax": _money_text(order.discount_excl_tax),
        "discount_incl_tax": _optional_money(order.discount_incl_tax),
        "total_tax": _money_text(order.total_tax),
        "order_total": _money_text(order.order_total),
        "channel_name": order.channel_name,
        "credit_card_name": order.credit_card_name,
        "payments": [
            {
                "amount": _money_text(payment.amount),
                "payment_date": payment.payment_date.isoformat(),
                "credit_card_name": payment.credit_card_name,
                "reference_number": payment.reference_number,
            }
            for payment in order.payments
        ],
    }
    if order.ordered_at is not None:
        data["ordered_at"] = order.ordered_at.astimezone(UTC).isoformat()
    return data


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def order_from_dict(data: Mapping[str, Any]) -> Order:
    """The Order that ``order_to_dict`` wrote (trusted input: raises KeyError/ValueError if not)."""
    return Order(
        order_number=data["order_number"],
        order_date=date.fromisoformat(data["order_date"]),
        order_type=OrderType(data["order_type"]),
        customer_name=data["customer_name"],
        billing_address=Address(**data["billing_address"]),
        shipping_address=Address(**data["shipping_address"]),
        lines=tuple(
            OrderLine(
                sku=line["sku"],
                name=line["name"],
                quantity=Decimal(line["quantity"]),
                price_excl_tax=Decimal(line["price_excl_tax"]),
                price_incl_tax=_optional_decimal(line["price_incl_tax"]),
                options=tuple(
                    LineOption(
                        name=option["name"],
                        value=option["value"],
                        sku=option["sku"],
                        quantity=_optional_decimal(option["quantity"]),
                    )
                    for option in line["options"]
                ),
            )
            for line in data["lines"]
        ),
        shipping_method=data["shipping_method"],
        shipping_excl_tax=Decimal(data["shipping_excl_tax"]),
        shipping_incl_tax=_optional_decimal(data["shipping_incl_tax"]),
        discount_excl_tax=Decimal(data["discount_excl_tax"]),
        discount_incl_tax=_optional_decimal(data["discount_incl_tax"]),
        total_tax=Decimal(data["total_tax"]),
        order_total=Decimal(data["order_total"]),
        channel_name=data["channel_name"],
        credit_card_name=data["credit_card_name"],
        payments=tuple(
            Payment(
                amount=Decimal(payment["amount"]),
                payment_date=date.fromisoformat(payment["payment_date"]),
                credit_card_name=payment["credit_card_name"],
                reference_number=payment["reference_number"],
            )
            for payment in data["payments"]
        ),
        ordered_at=datetime.fromisoformat(data["ordered_at"]) if data.get("ordered_at") else None,
    )


def canonical_json(order: Order) -> str:
    """The order as compact, key-sorted JSON: what the queue stores and fingerprints."""
    return json.dumps(order_to_dict(order), sort_keys=True, separators=(",", ":"))


# The moment of an order, as canonical JSON writes it (a key's quotes are never escaped).
_ORDERED_AT = re.compile(r',"ordered_at":"[^"]*"')


def fingerprint_of(canonical: str) -> str:
    """SHA-256 of the canonical JSON: equal for an identical re-send, different for a change.
    The order's moment (``ordered_at``) is left out: orders queued before it was kept have
    the same fingerprint when sent again, so a synced one is not reported as changed."""
    if '"ordered_at"' in canonical:
        canonical = _ORDERED_AT.sub("", canonical, count=1)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
