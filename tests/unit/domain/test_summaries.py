"""Daily summaries, property by property: their total is their orders' to the cent, their
RefNumber fits QuickBooks, and a day is over at midnight in any time zone, DST included."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from factories import make_line, make_order
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SKUS, order_json

from qbwc_bridge.domain import intake, mapping, summaries
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.domain.orders import Order, OrderType, TxnKind
from qbwc_bridge.domain.posting import MappingKind, MappingRule, Mappings
from qbwc_bridge.domain.text import FIELD_LIMITS

DAY = date(2024, 3, 9)
ZONES = sorted(zoneinfo.available_timezones())
SETTINGS = CompanySettings()


def _sum(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal("0"))


orders = st.lists(order_json(max_lines=6), min_size=1, max_size=12).map(
    lambda raw: [parse_order(order) for order in raw]
)
with_shared_skus = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(SKUS[:3]),
            st.sampled_from(("1.00", "9.99", "12.50", "0.01")),
            st.one_of(st.integers(1, 9), st.sampled_from(("0.5", "0.333", "2.125", "0.005"))),
        ),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=8,
).map(lambda orders_lines: [_order_of(index, lines) for index, lines in enumerate(orders_lines)])


def _order_of(index: int, lines: list[tuple[str, str, int | str]]) -> Order:
    amounts = [
        (Decimal(str(qty)) * Decimal(price)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        for _, price, qty in lines
    ]
    return make_order(
        OrderNumber=str(1000 + index),
        orderDetails=[
            make_line(sku=sku, priceExclTax=price, quantity=qty) for sku, price, qty in lines
        ],
        OrderTotal=str(_sum(amounts) + Decimal("6.60")),  # + 5.00 shipping - 2.00 + 3.60 tax
    )


def _check_totals(group: list[Order]) -> None:
    summary = summaries.build_summary(summaries.SALES, DAY, "Amazon", 0, group, SETTINGS)
    expected = _sum([order.order_total for order in group])
    assert summary.order.order_total == expected
    record = mapping.txn_record(summary.order, SETTINGS)
    assert record.kind is TxnKind.SALES_RECEIPT
    assert record.total == expected  # to the cent
    detail = [line for line in record.lines if line.quantity is not None]
    assert _sum([line.amount for line in detail]) == _sum(
        [line.amount for order in group for line in order.lines]
    )
    charges = {line.item: line.amount for line in record.lines if line.quantity is None}
    assert charges.get("Shipping", Decimal(0)) == _sum([o.shipping_excl_tax for o in group])
    assert charges.get("Discount", Decimal(0)) == -_sum([o.discount_excl_tax for o in group])
    individual_tax = _sum(
        [
            line.amount
            for order in group
            for line in mapping.txn_record(order, SETTINGS).lines
            if line.item == "Sales Tax"
        ]
    )
    assert charges.get("Sales Tax", Decimal(0)) == individual_tax
    # quantities are summed, never lost
    for sku in {line.sku for order in group for line in order.lines}:
        assert _sum([line.quantity for line in summary.order.lines if line.sku == sku]) == _sum(
            [line.quantity for order in group for line in order.lines if line.sku == sku]
        )


@settings(max_examples=150, deadline=None)
@given(orders)
def test_a_summary_totals_its_orders_to_the_cent(group: list[Order]) -> None:
    _check_totals(group)


@settings(max_examples=200, deadline=None)
@given(with_shared_skus)
def test_lines_of_one_sku_and_price_are_summed_unless_rounding_forbids(group: list[Order]) -> None:
    _check_totals(group)
    summary = summaries.build_summary(summaries.SALES, DAY, "Amazon", 0, group, SETTINGS)
    keys = [(line.sku, line.price_excl_tax) for line in summary.order.lines]
    for key in set(keys):
        originals = [
            line
            for order in group
            for line in order.lines
            if (line.sku, line.price_excl_tax) == key
        ]
        if keys.count(key) > 1:  # kept apart: one summed line would round differently
            quantity = _sum([line.quantity for line in originals])
            merged = (quantity * key[1]).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert merged != _sum([line.amount for line in originals])


def test_the_example_day() -> None:
    group = [
        make_order(OrderNumber="1002", orderDetails=[make_line(quantity=3)], TotalTax="1.00"),
        make_order(OrderNumber="999", orderDetails=[make_line(quantity=2)], TotalTax="2.00"),
        make_order(OrderNumber="1010", creditCardName="visa", TotalTax="0.50"),
    ]
    summary = summaries.build_summary(summaries.SALES, DAY, "Amazon", 0, group, SETTINGS)
    assert summary.ref_number == f"S240309{summaries.channel_code('Amazon')}0"
    assert summary.order_number == f"summary-{summary.ref_number}"
    assert summary.memo == (
        f"Amazon daily summary {summary.ref_number} of 2024-03-09: 3 orders, 999 to 1010"
    )
    assert summary.order.customer_name == "Amazon Sales"
    assert summary.order.order_type is OrderType.SALES_RECEIPT
    assert summary.order.credit_card_name == "Visa"  # every order paid by Visa
    widget = [line for line in summary.order.lines if line.sku == "WIDGET-RED"]
    assert [line.quantity for line in widget] == [Decimal(7)]


def test_payment_method_only_when_every_order_has_the_same_once_mapped() -> None:
    group = [make_order(creditCardName="Visa"), make_order(creditCardName="MasterCard")]
    assert (
        summaries.build_summary(
            summaries.SALES, DAY, "Shop", 0, group, SETTINGS
        ).order.credit_card_name
        == ""
    )
    rules = Mappings.of(
        [
            MappingRule(MappingKind.PAYMENT_METHOD, "visa", "Credit Card"),
            MappingRule(MappingKind.PAYMENT_METHOD, "mastercard", "Credit Card"),
        ]
    )
    summary = summaries.build_summary(
        summaries.SALES, DAY, "Shop", 0, group, SETTINGS, payment_method_of=rules.payment_method
    )
    assert mapping.txn_record(summary.order, SETTINGS, rules).payment_method == "Credit Card"


def test_refunds_supplementary_and_a_fixed_customer() -> None:
    settings_ = CompanySettings(summary_customer="Web Customers")
    group = [make_order(OrderType=1)]
    summary = summaries.build_summary(summaries.REFUNDS, DAY, "eBay", 2, group, settings_)
    assert summary.ref_number.startswith("R240309") and summary.ref_number.endswith("2")
    assert summary.memo.startswith(f"eBay supplementary refund summary {summary.ref_number} ")
    assert summary.memo.endswith(": 1 order, 1001")
    assert summary.order.order_type is OrderType.CREDIT_MEMO
    assert summary.order.customer_name == "Web Customers"


@given(
    st.sampled_from(("S", "R")),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.text(min_size=1, max_size=40),
    st.integers(0, summaries.MAX_SEQ),
)
def test_refnumbers_fit_and_tell_channels_days_and_sequences_apart(
    letter: str, day: date, channel: str, seq: int
) -> None:
    kind = summaries.REFUNDS if letter == "R" else summaries.SALES
    ref = summaries.summary_ref(kind, day, channel, seq)
    assert len(ref) == FIELD_LIMITS["RefNumber"] and ref.isascii() and ref.isalnum()
    assert ref == summaries.summary_ref(kind, day, channel.casefold(), seq)  # case is no name
    assert ref != summaries.summary_ref(kind, day + timedelta(days=1), channel, seq)
    assert ref != summaries.summary_ref(kind, day, channel, (seq + 1) % (summaries.MAX_SEQ + 1))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2037, 12, 31)),
    st.integers(0, 48),
)
def test_a_day_is_over_at_its_first_moment_of_the_next_day_in_any_zone(
    zone_name: str, day: date, delay: int
) -> None:
    zone = zoneinfo.ZoneInfo(zone_name)
    over = summaries.day_over_at(day, zone)
    assert over.tzinfo is UTC
    assert over.astimezone(zone).date() > day
    assert (over - timedelta(microseconds=1)).astimezone(zone).date() <= day
    due = summaries.due_at(day, zone, delay)
    assert due == over + timedelta(hours=delay)
    # the latest due day at the moment a day becomes due is that day (or a later one)
    assert summaries.last_due_day(due, zone, delay) >= day
    assert summaries.last_due_day(due - timedelta(microseconds=1), zone, delay) < day


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31)),
    st.integers(0, 48),
)
def test_the_last_due_day_is_due_and_the_next_is_not(
    zone_name: str, moment: datetime, delay: int
) -> None:
    zone = zoneinfo.ZoneInfo(zone_name)
    now = moment.replace(tzinfo=UTC)
    last = summaries.last_due_day(now, zone, delay)
    assert summaries.due_at(last, zone, delay) <= now
    assert summaries.due_at(last + timedelta(days=1), zone, delay) > now


def test_dst_days_are_23_and_25_hours_long() -> None:
    new_york = zoneinfo.ZoneInfo("America/New_York")
    spring = summaries.day_over_at(date(2024, 3, 10), new_york) - summaries.day_over_at(
        date(2024, 3, 9), new_york
    )
    autumn = summaries.day_over_at(date(2024, 11, 3), new_york) - summaries.day_over_at(
        date(2024, 11, 2), new_york
    )
    assert (spring, autumn) == (timedelta(hours=23), timedelta(hours=25))
    assert summaries.day_over_at(date(2024, 3, 9), new_york) == datetime(2024, 3, 10, 5, tzinfo=UTC)


# --- an order's day in the company's time zone ----------------------------------------------

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# Zones whose clocks jump: at 02:00 (New York, Berlin), at midnight (Havana, Santiago), by
# 30 minutes (Lord Howe), across the date line (Apia), and ones that never do.
DST_ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "America/Havana",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "UTC",
)


@pytest.mark.parametrize(
    ("sent", "day"),
    [
        ("2024-03-10T03:00:00Z", date(2024, 3, 9)),  # 22:00 in New York the evening before
        ("2024-03-10T03:00:00+00:00", date(2024, 3, 9)),
        ("2024-03-09T23:30:00-05:00", date(2024, 3, 9)),
        ("2024-03-10T06:59:00+01:00", date(2024, 3, 10)),  # 05:59 UTC: 00:59 EST
        ("2024-03-10T04:59:59Z", date(2024, 3, 9)),  # the last second of the 9th in New York
        ("2024-03-10T05:00:00Z", date(2024, 3, 10)),
        ("/Date(1710039600000)/", date(2024, 3, 9)),  # 2024-03-10T03:00:00Z
        ("2024-03-10", date(2024, 3, 10)),  # a date alone stays as given
        ("2024-03-10T03:00:00", date(2024, 3, 10)),  # a time without offset: as given
    ],
)
def test_an_orders_day_is_its_date_in_the_company_time_zone(sent: str, day: date) -> None:
    assert summaries.summary_day(make_order(OrderDate=sent), NEW_YORK) == day


def test_an_orders_moment_survives_the_queue_and_leaves_its_fingerprint_alone() -> None:
    timed = make_order(OrderDate="2024-03-10T03:00:00Z")
    dated = make_order(OrderDate="2024-03-10")
    assert timed.ordered_at == datetime(2024, 3, 10, 3, tzinfo=UTC) and dated.ordered_at is None
    payload = intake.canonical_json(timed)
    assert intake.order_from_dict(json.loads(payload)) == timed
    assert '"ordered_at"' not in intake.canonical_json(dated)
    # one queued before the moment was kept is not "changed" when sent again
    assert intake.fingerprint_of(payload) == intake.fingerprint_of(intake.canonical_json(dated))


def _moment_near_midnight(draw: st.DrawFn, zone: zoneinfo.ZoneInfo) -> datetime:
    """A moment within three hours of a local midnight (where DST jumps are most often)."""
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 31)))
    minutes = draw(st.integers(-180, 180))
    return summaries.day_over_at(day, zone) + timedelta(minutes=minutes)


@st.composite
def _timed_orders(draw: st.DrawFn, zone: zoneinfo.ZoneInfo) -> list[tuple[int, Order, TxnKind]]:
    items: list[tuple[int, Order, TxnKind]] = []
    for index in range(draw(st.integers(1, 10))):
        moment = _moment_near_midnight(draw, zone)
        how = draw(st.sampled_from(("offset", "utc", "net", "date")))
        if how == "offset":  # as the sender's clock read it, in any offset
            offset = timezone(timedelta(minutes=15 * draw(st.integers(-48, 56))))
            sent = moment.astimezone(offset).isoformat()
        elif how == "utc":
            sent = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif how == "net":
            sent = f"/Date({int(moment.timestamp() * 1000)})/"
        else:
            sent = moment.date().isoformat()
        channel = draw(st.sampled_from(("Amazon", "amazon ", "eBay", "")))
        kind = draw(st.sampled_from((TxnKind.SALES_RECEIPT, TxnKind.CREDIT_MEMO, TxnKind.INVOICE)))
        order = make_order(OrderNumber=str(index), OrderDate=sent, ChannelName=channel)
        items.append((index, order, kind))
    return items


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(DST_ZONES)
    .map(zoneinfo.ZoneInfo)
    .flatmap(lambda zone: st.tuples(st.just(zone), _timed_orders(zone), st.integers(-2, 2)))
)
def test_orders_are_grouped_by_their_day_in_the_zone_across_dst(
    case: tuple[zoneinfo.ZoneInfo, list[tuple[int, Order, TxnKind]], int],
) -> None:
    zone, items, shift = case
    days = {index: summaries.summary_day(order, zone) for index, order, _ in items}
    last_day = sorted(days.values())[len(days) // 2] + timedelta(days=shift)
    groups = summaries.group_orders(items, zone, last_day)
    placed = [index for members in groups.values() for index in members]
    assert sorted(placed) == sorted(i for i, day in days.items() if day <= last_day)
    for (channel, day, kind), members in groups.items():
        assert day <= last_day and members == sorted(members)  # in the order given
        for index in members:
            _, order, txn_kind = items[index]
            assert summaries.channel_of(order).casefold() == channel.casefold()
            assert summaries.summary_kind(txn_kind) == kind
            assert days[index] == day
            if order.ordered_at is None:
                assert day == order.order_date  # a date alone stays as given
            else:
                # the day is the one whose local midnights enclose the moment
                assert summaries.day_over_at(day - timedelta(days=1), zone) <= order.ordered_at
                assert order.ordered_at < summaries.day_over_at(day, zone)
    # one group per channel (without case), day and kind
    keys = [(channel.casefold(), day, kind) for channel, day, kind in groups]
    assert len(keys) == len(set(keys))
