"""The Connex-compatible REST API's requests as plain values: their fields read as Connex's
pages spell them, in any letter case, checked before anything is read or written."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from qbwc_bridge.errors import BridgeError

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 10
# DatabaseDownload/List hands out at most this many exported orders a call.
MAX_DOWNLOAD = 500

# The properties of Connex's connection settings table. The bridge applies the sync
# window and the posting; the others are accepted (integrations send the whole table) and
# answered as not used.
USED_SETTINGS = ("LastDownloadUtc", "LastDownloadUtcEnd", "SummaryTransactionGroupBy")
UNUSED_SETTINGS = (
    "SolutionUserName",
    "SolutionPassword",
    "SolutionParameter",
    "ShopifyToken",
    "Stores",
    "OrderStatuses",
    "LastProductDownloadUtc",
    "LastProductDownloadUtcEnd",
    "LastProductUploadUtc",
    "LastProductUploadUtcEnd",
)
# SummaryTransactionGroupBy's values, as the company setting `posting` names them.
POSTINGS = {1: "daily_summary", 0: "individual"}

# orders/list's orderBy values (folded) and what each sorts on.
ORDER_SORTS = {
    "": "order_date",
    "orderdate": "order_date",
    "ordernumber": "order_number",
    "id": "id",
    "customername": "customer_name",
    "status": "status",
    "syncstatus": "status",
}
# products/list's orderBy values (folded) and what each sorts on.
PRODUCT_SORTS = {
    "": "sku",
    "sku": "sku",
    "name": "sku",
    "quantityonhand": "quantity_on_hand",
    "quantityonorder": "quantity_on_order",
    "quantityonsalesorder": "quantity_on_sales_order",
    "quantity": "quantity_on_hand",
    "salesprice": "sales_price",
    "averagecost": "average_cost",
    "unitcost": "purchase_cost",
    "updatedat": "updated_at",
    "createdat": "updated_at",
}


class BadRequest(BridgeError):
    """The request is not one the API takes (answered 400 with this message)."""


class Fields:
    """A JSON object's properties by name in any letter case (Connex matches them so)."""

    def __init__(self, raw: object, what: str = "The body") -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
            raise BadRequest(f"{what} must be a JSON object")
        self.spelled: dict[str, str] = {}
        self.values: dict[str, object] = {}
        for key, value in raw.items():
            folded = key.casefold()
            if folded in self.values and self.values[folded] != value:
                raise BadRequest(f"{key} is given twice, with different values")
            self.spelled[folded] = key
            self.values[folded] = value

    def get(self, name: str) -> object:
        return self.values.get(name.casefold())

    def has(self, name: str) -> bool:
        return name.casefold() in self.values

    def text(self, name: str, default: str = "") -> str:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        return value

    def whole(self, name: str, default: int | None = None) -> int | None:
        """A whole number (or its digits as a string); ``default`` when absent or null."""
        value = self.get(name)
        if value is None or value == "":
            return default
        number = whole_number(value)
        if number is None:
            raise BadRequest(f"{name} must be a whole number, not {_shown(value)}")
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        flag = boolean(value)
        if flag is None:
            raise BadRequest(f"{name} must be true or false, not {_shown(value)}")
        return flag


def whole_number(value: object) -> int | None:
    """A JSON whole number, or one written as digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value() and value.is_finite():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value.strip())
    return None


def boolean(value: object) -> bool | None:
    """true/false, or "true"/"false" in any case; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


@dataclass(frozen=True, slots=True)
class Page:
    """1-based paging: ``number`` of pages of ``size`` rows."""

    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def pages(self, total: int) -> int:
        return -(-total // self.size)


def page_of(fields: Fields) -> Page:
    number = fields.whole("pageNumber", 1)
    size = fields.whole("pageSize", DEFAULT_PAGE_SIZE)
    assert number is not None and size is not None
    if number < 1:
        raise BadRequest(f"pageNumber starts at 1, not {number}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"pageSize must be from 1 to {MAX_PAGE_SIZE}, not {size}")
    return Page(number, size)


def descending(fields: Fields, default: bool) -> bool:
    direction = fields.text("direction").strip().lower()
    if direction == "":
        return default
    if direction not in ("asc", "desc"):
        raise BadRequest(f"direction must be asc or desc, not {_shown(direction)}")
    return direction == "desc"


def sort_of(fields: Fields, sorts: Mapping[str, str]) -> str:
    wanted = fields.text("orderBy").strip()
    column = sorts.get(wanted.casefold())
    if column is None:
        known = ", ".join(sorted({name for name in sorts if name}))
        raise BadRequest(f"orderBy {_shown(wanted)} is not one of: {known} (in any case)")
    return column


def connection_of(fields: Fields) -> int:
    """userConnectionId: 0 (or absent) for all the company's connections."""
    value = fields.whole("userConnectionId", 0)
    assert value is not None
    if value < 0:
        raise BadRequest(f"userConnectionId must not be negative, not {value}")
    return value


def us_date(fields: Fields, name: str) -> date | None:
    """MM/DD/YYYY (Connex's list dates); an ISO date is taken too."""
    text = fields.text(name).strip()
    if not text:
        return None
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text[:10] if pattern == "%Y-%m-%d" else text, pattern).date()
        except ValueError:
            continue
    raise BadRequest(f"{name} must be a date as MM/DD/YYYY, not {_shown(text)}")


def utc_time(name: str, value: object) -> datetime:
    """A sync timer: ISO 8601 (Connex writes up to seven decimals) or MM/DD/YYYY [HH:MM[:SS]];
    without a zone, UTC (the timers are named Utc)."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be a date and time such as 2026-12-01T10:00:00Z")
    text = value.strip()
    parsed: datetime | None = None
    for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y"):
        try:
            parsed = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if parsed is None:
        iso = text.replace("Z", "+00:00").replace("z", "+00:00")
        head, dot, tail = iso.partition(".")
        if dot:  # at most six decimals: .NET writes seven
            digits = len(tail) - len(tail.lstrip("0123456789"))
            iso = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            raise BadRequest(
                f"{name} must be a date and time such as 2026-12-01T10:00:00Z, not {_shown(value)}"
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def connex_password(value: object) -> str:
    """ConnexUser/Login's Password: the password in base64."""
    if not isinstance(value, str):
        raise BadRequest("Password must be the password in base64, as a string")
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("Password must be the password in base64") from None


def order_number_of(fields: Fields) -> str:
    """An order's OrderNumber as the queue keys it (as intake reads it: text, composed)."""
    value = fields.get("OrderNumber")
    number = whole_number(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    return "" if number is None else str(number)
