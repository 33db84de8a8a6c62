"""Daily summaries (posting = daily_summary): which orders go together — one day of one
channel, sales apart from refunds — when their day is over, and the one order (a sales
receipt or a credit memo) they become, whose total is theirs to the cent."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.orders import Address, Order, OrderLine, OrderType, TxnKind
from qbwc_bridge.domain.text import FIELD_LIMITS, fit_line

SALES = "sales_receipt"
REFUNDS = "credit_memo"
SUMMARY_PREFIX = "summary-"  # a daily summary's order number: summary-<its RefNumber>
NO_CHANNEL = "Web"  # the channel of orders that name none
_CENT = Decimal("0.01")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_SEQ = len(_BASE36) - 1  # supplementary summaries of one day: 1 to 35

T = TypeVar("T")


class SummaryFull(ValueError):
    """A day of a channel has had every summary its RefNumbers can number."""


def summary_kind(kind: TxnKind) -> str:
    """Refunds (credit memos) go into the day's credit memo, everything else into its
    sales receipt."""
    return REFUNDS if kind is TxnKind.CREDIT_MEMO else SALES


def channel_of(order: Order) -> str:
    return " ".join(order.channel_name.split()) or NO_CHANNEL


# --- when a day is over ------------------------------------------------------------------


def day_over_at(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) of the next day in ``zone``: local midnight, DST included
    (where midnight does not exist that day, the first moment after the jump)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    instant = midnight.astimezone(UTC)
    # Local midnight in a gap (fold=0) is the moment the clocks jump; check, and step back
    # to the earliest instant that is already the next day.
    while (instant - timedelta(hours=1)).astimezone(zone).date() > day:
        instant -= timedelta(hours=1)
    return instant


def due_at(day: date, zone: ZoneInfo, delay_hours: int) -> datetime:
    """When the summary of ``day`` is posted: the day is over, plus the delay."""
    return day_over_at(day, zone) + timedelta(hours=delay_hours)


def last_due_day(now: datetime, zone: ZoneInfo, delay_hours: int) -> date:
    """The latest day whose summary is due at ``now``."""
    day = (now - timedelta(hours=delay_hours)).astimezone(zone).date()
    while due_at(day, zone, delay_hours) <= now:
        day += timedelta(days=1)
    while due_at(day, zone, delay_hours) > now:
        day -= timedelta(days=1)
    return day


def summary_day(order: Order, zone: ZoneInfo) -> date:
    """The day an order counts for: the date of its moment in the company's time zone
    (2024-03-10T03:00:00Z is 2024-03-09 in New York), or its date as given when it has no
    moment (a date alone, or a time without a UTC offset)."""
    if order.ordered_at is None:
        return order.order_date
    return order.ordered_at.astimezone(zone).date()


def group_orders(
    items: Iterable[tuple[T, Order, TxnKind]], zone: ZoneInfo, last_day: date
) -> dict[tuple[str, date, str], list[T]]:
    """The orders whose day (``summary_day``) is ``last_day`` or earlier, by channel (the
    first spelling met, compared without case), day and kind (sales or refunds), in the
    order given; later days are left out (not over yet)."""
    groups: dict[tuple[str, date, str], list[T]] = {}
    names: dict[str, str] = {}
    for item, order, kind in items:
        day = summary_day(order, zone)
        if day > last_day:
            continue
        channel = channel_of(order)
        channel = names.setdefault(channel.casefold(), channel)
        groups.setdefault((channel, day, summary_kind(kind)), []).append(item)
    return groups


# --- RefNumber and Memo --------------------------------------------------------------------


def channel_code(channel: str) -> str:
    """Three characters that tell the channels of one company apart in a RefNumber."""
    digest = int(hashlib.sha1(channel.casefold().encode("utf-8")).hexdigest(), 16)
    code = ""
    for _ in range(3):
        digest, digit = divmod(digest, 36)
        code += _BASE36[digit]
    return code


def summary_ref(kind: str, day: date, channel: str, seq: int) -> str:
    """The summary's RefNumber, always 11 characters: S (sales) or R (refunds), the day as
    YYMMDD, the channel's code, and 0 for the day's summary or 1-Z for a supplementary one:
    S240304K7Q0."""
    if not 0 <= seq <= MAX_SEQ:
        raise SummaryFull(
            f"{channel} already has {MAX_SEQ} supplementary summaries for {day.isoformat()}"
        )
    letter = "R" if kind == REFUNDS else "S"
    return f"{letter}{day:%y%m%d}{channel_code(channel)}{_BASE36[seq]}"


def _number_key(number: str) -> tuple[object, ...]:
    """Order numbers in natural order: 999 before 1000 (ASCII digits only: '¹' is text)."""
    return tuple(
        (0, int(part), "") if part[0] in "0123456789" else (1, 0, part.casefold())
        for part in re.findall(r"[0-9]+|[^0-9]+", number)
    )


def summary_memo(
    kind: str,
    day: date,
    channel: str,
    seq: int,
    ref: str,
    numbers: Sequence[str],
    *,
    supplementary: bool | None = None,
) -> str:
    """What the summary says it is: "Amazon daily summary S240304K7Q0 of 2024-03-04:
    12 orders, 1001 to 1050". The duplicate check finds it by "summary <RefNumber>".
    ``supplementary`` (by default: any seq but 0) when an earlier summary of the day is in
    QuickBooks; one that follows an undone summary is the day's summary again."""
    what = "refund summary" if kind == REFUNDS else "summary"
    extra = bool(seq) if supplementary is None else supplementary
    label = f"supplementary {what}" if extra else f"daily {what}"
    ordered = sorted(numbers, key=_number_key)
    count = f"{len(ordered)} order{'s' if len(ordered) != 1 else ''}"
    span = ordered[0] if len(ordered) == 1 else f"{ordered[0]} to {ordered[-1]}"
    memo = f"{channel} {label} {ref} of {day.isoformat()}: {count}, {span}"
    return fit_line(memo, FIELD_LIMITS["Memo"])


def summary_customer(settings: CompanySettings, channel: str) -> str:
    return settings.summary_customer.strip() or f"{channel} Sales"


# --- the summary itself --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """What a group of orders becomes: ``order`` is posted like any order (its lines,
    shipping, discount, tax and total summed), with ``memo`` as its Memo."""

    kind: str
    day: date
    channel: str
    seq: int
    ref_number: str
    order: Order
    memo: str
    count: int

    @property
    def order_number(self) -> str:
        return self.order.order_number


def _amount(quantity: Decimal, price: Decimal) -> Decimal:
    return (quantity * price).quantize(_CENT, ROUND_HALF_UP)


def summed_lines(orders: Iterable[Order]) -> list[OrderLine]:
    """One line per SKU and unit price, quantities summed — unless rounding would make the
    summed line differ from the sum of its lines' amounts (fractional quantities at a price
    whose product has fractions of a cent): then those lines stay as they are, so the
    summary's amount is still theirs to the cent."""
    groups: dict[tuple[str, Decimal], list[OrderLine]] = {}
    for order in orders:
        for line in order.lines:
            key = (line.sku.strip().casefold(), line.price_excl_tax)
            groups.setdefault(key, []).append(line)
    summed: list[OrderLine] = []
    for (_, price), lines in groups.items():
        quantity = sum((line.quantity for line in lines), Decimal("0"))
        amount = sum((line.amount for line in lines), Decimal("0"))
        if _amount(quantity, price) == amount:
            first = lines[0]
            summed.append(OrderLine(first.sku, first.name, quantity, price))
        else:
            summed.extend(OrderLine(line.sku, line.name, line.quantity, price) for line in lines)
    return summed


def build_summary(
    kind: str,
    day: date,
    channel: str,
    seq: int,
    orders: Sequence[Order],
    settings: CompanySettings,
    *,
    payment_method_of: Callable[[str], str] = lambda name: name,
    supplementary: bool | None = None,
) -> Summary:
    """The summary of ``orders`` (one channel, one day, one kind). PaymentMethodRef only
    when every order has the same payment method once mapped (``payment_method_of``)."""
    if not orders:
        raise ValueError("a summary needs at least one order")
    ref = summary_ref(kind, day, channel, seq)
    methods = {payment_method_of(order.credit_card_name).casefold() for order in orders}
    card = orders[0].credit_card_name if len(methods) == 1 else ""
    order = Order(
        order_number=f"{SUMMARY_PREFIX}{ref}",
        order_date=day,
        customer_name=summary_customer(settings, channel),
        lines=tuple(summed_lines(orders)),
        total_tax=sum((o.total_tax for o in orders), Decimal("0")),
        order_total=sum((o.order_total for o in orders), Decimal("0")),
        order_type=OrderType.CREDIT_MEMO if kind == REFUNDS else OrderType.SALES_RECEIPT,
        billing_address=Address(),
        shipping_address=Address(),
        shipping_excl_tax=sum((o.shipping_excl_tax for o in orders), Decimal("0")),
        discount_excl_tax=sum((o.discount_excl_tax for o in orders), Decimal("0")),
        channel_name=channel,
        credit_card_name=card,
    )
    numbers = [o.order_number for o in orders]
    memo = summary_memo(kind, day, channel, seq, ref, numbers, supplementary=supplementary)
    return Summary(kind, day, channel, seq, ref, order, memo, len(orders))
