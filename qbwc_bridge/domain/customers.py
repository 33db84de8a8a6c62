"""Which QuickBooks customer an order belongs to, by the company's customer_match strategy.

The matched name is the lookup key (CustomerQuery by FullName) and the CustomerAdd name, so it
is folded and cut the same deterministic way on every run: a returning customer is found again.

Address layout (BillAddress / ShipAddress): the non-empty lines of name, company, address1,
address2, in that order, fill Addr1..Addr4 from the top, as QuickBooks prints an address.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from qbwc_bridge.domain.company import InvalidSetting
from qbwc_bridge.domain.orders import Address, Order
from qbwc_bridge.domain.records import CustomerRecord, QbAddress
from qbwc_bridge.domain.text import FIELD_LIMITS, fit_line, fit_name, qb_text

FIXED_PREFIX = "fixed:"


def person_names(order: Order) -> tuple[str, str]:
    """(first, last): the billing first/last name, else CustomerName split at its last word."""
    billing = order.billing_address
    first, last = billing.first_name.strip(), billing.last_name.strip()
    if first or last:
        return first, last
    words = order.customer_name.split()
    if not words:
        return "", ""
    return " ".join(words[:-1]), words[-1]


def _storable(part: str) -> bool:
    """Does the part keep a character in a QuickBooks name? (An emoji alone does not.)"""
    return bool(fit_name(part))


def _last_first(first: str, last: str) -> str:
    return ", ".join(part for part in (last, first) if _storable(part))


def _first_last(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if _storable(part))


def _matched_name(order: Order, strategy: str) -> str:
    first, last = person_names(order)
    if strategy == "last_first":
        return _last_first(first, last)
    if strategy == "first_last":
        return _first_last(first, last)
    if strategy == "company":
        return order.billing_address.company.strip() or _last_first(first, last)
    if strategy == "email":
        return order.billing_address.email.strip() or _last_first(first, last)
    if strategy.startswith(FIXED_PREFIX):
        return strategy[len(FIXED_PREFIX) :]
    raise InvalidSetting(
        f"customer_match {strategy!r} is unknown: use last_first, first_last, company, email "
        "or fixed:NAME"
    )


def customer_name(order: Order, strategy: str) -> str:
    """The QuickBooks customer name for ``order``: folded, colon-free, at most 41 characters.

    When nothing of the matched name can be stored, the buyer is told apart by the next
    thing that is theirs alone — the person's name, the order's CustomerName, the email,
    and last the order number — never by a shared constant, which would merge buyers.
    """
    first, last = person_names(order)
    candidates = (
        _matched_name(order, strategy),
        _last_first(first, last),
        order.customer_name,
        order.billing_address.email.strip(),
    )
    for candidate in candidates:
        name = fit_name(candidate, FIELD_LIMITS["Name"])
        if name:
            return name
    number = (
        qb_text(order.order_number).strip()
        or hashlib.sha1(order.order_number.encode("utf-8", "surrogatepass"))
        .hexdigest()[:10]
        .upper()
    )
    return fit_name(f"Web order {number}", FIELD_LIMITS["Name"])


def customer_record(order: Order, strategy: str) -> CustomerRecord:
    """The CustomerAdd for ``order`` (only the name for a fixed walk-in customer)."""
    name = customer_name(order, strategy)
    if strategy.startswith(FIXED_PREFIX):
        # One customer for every order: no single buyer's details belong on it.
        return CustomerRecord(name=name)
    first, last = person_names(order)
    billing, shipping = order.billing_address, order.shipping_address
    return CustomerRecord(
        name=name,
        company_name=fit_line(billing.company, FIELD_LIMITS["CompanyName"]),
        first_name=fit_line(first, FIELD_LIMITS["FirstName"]),
        last_name=fit_line(last, FIELD_LIMITS["LastName"]),
        bill_address=qb_address(billing),
        ship_address=qb_address(shipping),
        phone=fit_line(billing.phone_number or shipping.phone_number, FIELD_LIMITS["Phone"]),
        email=fit_line(billing.email or shipping.email, FIELD_LIMITS["Email"]),
    )


def _person_line(address: Address) -> str:
    return address.full_name.strip() or _first_last(
        address.first_name.strip(), address.last_name.strip()
    )


@lru_cache(maxsize=1024)  # an order's CustomerAdd and its transaction carry the same blocks
def qb_address(address: Address) -> QbAddress:
    """A JMAUser address as a QuickBooks address block, every field folded and cut."""
    raw_lines = (_person_line(address), address.company, address.address1, address.address2)
    lines = [fit_line(line, FIELD_LIMITS["Addr1"]) for line in raw_lines]
    filled = [line for line in lines if line] + ["", "", "", ""]
    return QbAddress(
        addr1=filled[0],
        addr2=filled[1],
        addr3=filled[2],
        addr4=filled[3],
        city=fit_line(address.city, FIELD_LIMITS["City"]),
        state=fit_line(address.region_name, FIELD_LIMITS["State"]),
        postal_code=fit_line(address.postal_code, FIELD_LIMITS["PostalCode"]),
        country=fit_line(
            address.country_name.strip() or address.two_letter_iso_code, FIELD_LIMITS["Country"]
        ),
    )
