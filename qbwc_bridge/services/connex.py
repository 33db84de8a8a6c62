"""The Connex-compatible REST API's use cases, over the bridge's own: orders in through the
same intake as `enqueue`, lists of orders and products, the channels as connections, their
sync timers, and QuickBooks' exported orders for polling (docs/http-api.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.company import Company, CompanySettings, InvalidSetting
from qbwc_bridge.domain.connex import (
    MAX_DOWNLOAD,
    ORDER_SORTS,
    POSTINGS,
    PRODUCT_SORTS,
    UNUSED_SETTINGS,
    USED_SETTINGS,
    BadRequest,
    Fields,
    boolean,
    connection_of,
    descending,
    order_number_of,
    page_of,
    sort_of,
    us_date,
    utc_time,
    whole_number,
)
from qbwc_bridge.domain.orders import OrderLine, OrderStatus
from qbwc_bridge.errors import BridgeError, OrderRejected
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import api_users as api_user_store
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import connex as connex_store
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store.api_users import ApiUser
from qbwc_bridge.store.connex import Connection, ListedOrder, ListedProduct

RECORDS_INSERTED = "Records inserted Successfully"
# What products/list calls the inventory's source.
QUICKBOOKS = "QuickBooks Desktop"


class OrdersRejected(BridgeError):
    """Some orders of a createorders call have problems: nothing was applied."""

    def __init__(self, problems: list[OrderRejected]) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} found; nothing was queued or cancelled."
        )


class TooManyOrders(BridgeError):
    """More orders in one call than allowed."""


# --- connections ---------------------------------------------------------------------------


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connection_json(connection: Connection) -> dict[str, Any]:
    return {
        "id": connection.id,
        "name": connection.name,
        "connectionType": connection.kind,
        "solutionWebsite": connection.url,
        "enabled": connection.enabled,
        "dateCreated": _time(connection.created_at),
        "dateModified": _time(connection.updated_at),
    }


def connections(store: Store, user: ApiUser) -> list[dict[str, Any]]:
    """UserConnections/List: the company's channels."""
    with store.transaction() as tx:
        found = connex_store.connections(tx, user.company_id)
    return [_connection_json(connection) for connection in found.values()]


def _connection(found: Mapping[int, Connection], connection_id: int) -> Connection:
    if connection_id not in found:
        raise BadRequest(
            f"userConnectionId {connection_id} is not one of this company's connections "
            "(UserConnections/List lists them)"
        )
    return found[connection_id]


def _wanted_connection(tx: Tx, user: ApiUser, fields: Fields) -> int | None:
    """A list's userConnectionId: None for 0 (all), else one of the company's channels."""
    connection_id = connection_of(fields)
    if connection_id == 0:
        return None
    return _connection(connex_store.connections(tx, user.company_id), connection_id).id


# --- orders in -----------------------------------------------------------------------------


def _lookup(raw: Mapping[str, object], name: str) -> object:
    """A property in any letter case (the intake reports a property given twice)."""
    folded = name.casefold()
    for key, value in raw.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return None


def create_orders(store: Store, settings: Settings, user: ApiUser, items: object) -> str:
    """orders/createorders: queue the orders like `enqueue`, cancel those sent Deleted, all
    or nothing; each order remembers its UserConnectionId."""
    if not isinstance(items, list):
        raise BadRequest("Send a JSON array of orders")
    if len(items) > settings.max_orders_per_api_call:
        raise TooManyOrders(
            f"At most {settings.max_orders_per_api_call} orders per call; this one has {len(items)}"
        )
    with store.transaction() as tx:
        known = connex_store.connections(tx, user.company_id)
    problems: list[OrderRejected] = []
    live: list[object] = []
    live_numbers: list[str] = []
    cancels: list[str] = []
    remembered: dict[str, int] = {}
    for raw in items:
        if not isinstance(raw, Mapping):
            live.append(raw)  # the intake names what is wrong with it
            continue
        number = order_number_of(Fields({"OrderNumber": _lookup(raw, "OrderNumber")}))
        connection = _lookup(raw, "UserConnectionId")
        connection_id = whole_number(connection)
        if connection is None:
            problems.append(
                OrderRejected(
                    number,
                    "UserConnectionId",
                    "is required: the connection the order comes from (UserConnections/List)",
                )
            )
        elif connection_id is None or connection_id not in known:
            problems.append(
                OrderRejected(
                    number,
                    "UserConnectionId",
                    f"{connection!r} is not one of this company's connections "
                    "(UserConnections/List lists them)",
                )
            )
        deleted_value = _lookup(raw, "Deleted")
        deleted = False if deleted_value is None else boolean(deleted_value)
        if deleted is None:
            problems.append(
                OrderRejected(number, "Deleted", f"must be true or false, not {deleted_value!r}")
            )
            continue
        if deleted:
            if not number.strip():
                problems.append(OrderRejected(number, "OrderNumber", "is required"))
                continue
            cancels.append(number)
        else:
            live.append(raw)
            live_numbers.append(number)
        if number and connection_id is not None and connection_id in known:
            remembered[number] = connection_id

    def then(
        tx: Tx, company: Company, report: order_service.EnqueueReport
    ) -> Iterable[OrderRejected]:
        now = utcnow()
        # An order this call queued is new: not cancelled, and its connection written with it.
        known = {*report.resent, *cancels}
        order_store.reinstate(tx, user.company_id, [n for n in live_numbers if n in known], now)
        connections = {n: c for n, c in remembered.items() if n in known}
        api_user_store.remember_connections(tx, user.company_id, connections)
        refused = order_store.cancel(tx, user.company_id, cancels, now)
        return problems + [_not_cancelled(number, *refused[number]) for number in refused]

    try:
        order_service.enqueue(store, user.company, live, then=then, connections=remembered)
    except order_service.NothingEnqueued as rejected:
        raise OrdersRejected(rejected.problems) from None
    return RECORDS_INSERTED


def _not_cancelled(number: str, status: OrderStatus, txn_id: str | None) -> OrderRejected:
    if status is OrderStatus.IN_PROGRESS:
        problem = "is in a Web Connector run now: send the deletion again after the run"
    else:
        where = f" (TxnID {txn_id})" if txn_id else ""
        problem = (
            f"is already in QuickBooks{where}, status {status.value}: it is not deleted; "
            "delete it in QuickBooks (or have the bridge undo it: `qbwc-bridge unpost`)"
        )
    return OrderRejected(number, "Deleted", problem)


# --- orders list ---------------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _line_json(line: OrderLine, order_number: str) -> dict[str, Any]:
    return {
        "productName": line.name or line.sku,
        "sku": line.sku,
        "orderedProductQuantity": _number(line.quantity),
        "totalSoldPrice": _number(line.amount),
        "unitPrice": _number(line.price_excl_tax),
        "imagesUrl": [],
        "orderNumberSummary": [order_number],
    }


def _order_json(listed: ListedOrder, known: Mapping[int, Connection]) -> dict[str, Any]:
    order = listed.order
    connection = known.get(listed.user_connection_id or 0)
    sales = sum((line.amount for line in order.lines), Decimal("0"))
    return {
        "id": listed.id,
        "orderNumber": order.order_number,
        "orderDate": f"{order.order_date.isoformat()}T00:00:00",
        "channel": order.channel_name or (connection.name if connection else ""),
        "totalProductSales": _number(sales),
        "userConnectionId": listed.user_connection_id or 0,
        "chipColor": "",
        "lstOrderItemDetails": [_line_json(line, order.order_number) for line in order.lines],
        "customerName": order.customer_name,
        "orderTotal": _number(order.order_total),
        "syncStatus": listed.status.value,
        "qbTxnId": listed.qb_txn_id,
        "qbRefNumber": listed.qb_ref_number,
        "syncError": listed.error,
    }


def list_orders(store: Store, user: ApiUser, body: object) -> dict[str, Any]:
    """orders/list: a page of the company's queued orders with where each stands."""
    fields = Fields(body)
    page = page_of(fields)
    begin, end = us_date(fields, "beginDate"), us_date(fields, "endDate")
    if begin and end and end < begin:
        raise BadRequest("endDate is before beginDate")
    sort = sort_of(fields, ORDER_SORTS)
    with store.transaction() as tx:
        known = connex_store.connections(tx, user.company_id)
        wanted = connection_of(fields)
        if wanted:
            _connection(known, wanted)
        listed, total = connex_store.orders_page(
            tx,
            connex_store.OrderFilter(
                company_id=user.company_id,
                begin=begin,
                end=end,
                search=fields.text("searchText"),
                connection_id=wanted or None,
                sort=sort,
                descending=descending(fields, default=sort == "order_date"),
                offset=page.offset,
                limit=page.size,
            ),
        )
    return {
        "lstAllOrders": [_order_json(order, known) for order in listed],
        "objMetaData": {"totalRows": total, "totalNumberOfPages": page.pages(total)},
    }


# --- products list -------------------------------------------------------------------------


def _quantity(value: Decimal | None) -> int | float | None:
    return None if value is None else _number(value)


def _product_json(product: ListedProduct) -> dict[str, Any]:
    on_hand = product.quantity_on_hand
    available = None
    if on_hand is not None:
        available = max(on_hand - (product.quantity_on_sales_order or Decimal(0)), Decimal(0))
    updated = _time(product.updated_at)
    details = product.details
    return {
        "id": 0,
        # QuickBooks' Name (the last part of a sub-item's FullName); the SKU is the FullName.
        "name": details.name or product.sku,
        "sku": product.sku,
        "description": details.description,
        "quantityOnHand": _quantity(on_hand),
        "quantityOnOrder": _quantity(product.quantity_on_order),
        "quantityOnSalesOrder": _quantity(product.quantity_on_sales_order),
        "quantity": _quantity(available),
        "averageCost": _quantity(details.average_cost),
        "unitCost": _quantity(details.purchase_cost),  # what the item is bought at
        "salesPrice": _quantity(details.sales_price),
        "isManual": False,
        "hasUnknownSku": False,
        "channelName": QUICKBOOKS,
        "qbListId": product.qb_list_id,
        "createdAt": updated,
        "updatedAt": updated,
    }


def _unknown_json(sku: str) -> dict[str, Any]:
    return {
        "id": 0,
        "name": sku,
        "sku": sku,
        "description": None,
        "quantityOnHand": None,
        "quantityOnOrder": None,
        "quantityOnSalesOrder": None,
        "quantity": None,
        "averageCost": None,
        "unitCost": None,
        "salesPrice": None,
        "isManual": False,
        "hasUnknownSku": True,
        "channelName": "",
        "qbListId": "",
        "createdAt": None,
        "updatedAt": None,
    }


def list_products(store: Store, user: ApiUser, body: object) -> dict[str, Any]:
    """products/list: QuickBooks' inventory rows, or the SKUs of waiting orders it lacks."""
    fields = Fields(body)
    page = page_of(fields)
    sort = sort_of(fields, PRODUCT_SORTS)
    backwards = descending(fields, default=False)
    only_unknown = fields.flag("onlyFetchUnknownSkusProducts")
    manual = fields.flag("isManual")
    search = fields.text("searchText").strip()
    with store.transaction() as tx:
        _wanted_connection(tx, user, fields)  # products are the company's, whichever it names
        unknown = connex_store.unknown_skus(tx, user.company_id)
        if only_unknown:
            matching = [sku for sku in unknown if search.casefold() in sku.casefold()]
            if backwards:
                matching.reverse()
            rows = [_unknown_json(sku) for sku in matching[page.offset : page.offset + page.size]]
            total = len(matching)
        elif manual:  # the bridge has no products entered by hand
            rows, total = [], 0
        else:
            listed, total = connex_store.products_page(
                tx,
                connex_store.ProductFilter(
                    company_id=user.company_id,
                    search=search,
                    sort=sort,
                    descending=backwards,
                    offset=page.offset,
                    limit=page.size,
                ),
            )
            rows = [_product_json(product) for product in listed]
    return {
        "lstProducts": rows,
        "unknownSkusCount": len(unknown),
        "objMetaData": {"totalRows": total, "totalNumberOfPages": page.pages(total)},
    }


# --- connection settings and the scheduled task --------------------------------------------

_SETTINGS = {name.casefold(): name for name in (*USED_SETTINGS, *UNUSED_SETTINGS)}


def update_settings(store: Store, user: ApiUser, body: object) -> dict[str, list[str]]:
    """Settings/Update: the channel's sync timers and the company's posting; the other
    Connex settings are accepted and answered as not used; anything else changes nothing."""
    fields = Fields(body)
    connection_id = fields.whole("userConnectionId", 0)
    if not connection_id:
        raise BadRequest("userConnectionId is required: the connection whose settings these are")
    given = [folded for folded in fields.values if folded != "userconnectionid"]
    unknown = [fields.spelled[folded] for folded in given if folded not in _SETTINGS]
    if unknown:
        raise BadRequest(
            f"Not a connection setting: {', '.join(unknown)}; nothing was changed. "
            f"Known: {', '.join(_SETTINGS.values())}"
        )
    updated: list[str] = []
    not_used: list[str] = []
    start = end = None
    group: int | None = None
    for folded in given:
        name, value = _SETTINGS[folded], fields.values[folded]
        if name in UNUSED_SETTINGS or value is None:
            not_used.append(name)
        elif name == "LastDownloadUtc":
            start = utc_time(name, value)
        elif name == "LastDownloadUtcEnd":
            end = utc_time(name, value)
        else:
            group = whole_number(value)
            if group not in POSTINGS:
                raise BadRequest(
                    "SummaryTransactionGroupBy must be 1 (a daily summary) or 0 (each order)"
                )
            if "posting" not in CompanySettings.names():
                not_used.append(name)
                group = None
    now = utcnow()
    with store.transaction() as tx:
        connection = _connection(connex_store.connections(tx, user.company_id), connection_id)
        if start is not None or end is not None:
            if connection.kind != ChannelKind.CUSTOM_STORE.value:
                raise BadRequest(
                    f"Connection {connection.id} ({connection.kind}) has no sync timers: "
                    "only a custom store's orders are pulled"
                )
            current = channel_store.get(tx, connection.id).window
            window = Window(start or current.start, end or current.end)
            if window.end <= window.start:
                raise BadRequest("LastDownloadUtcEnd must be after LastDownloadUtc")
            channel_store.update_settings(tx, connection.id, now, window=window)
            updated += [
                name
                for name, value in (("LastDownloadUtc", start), ("LastDownloadUtcEnd", end))
                if value is not None
            ]
        if group is not None:
            company = company_store.get(tx, user.company_id)
            try:
                settings = company.settings.with_value("posting", POSTINGS[group])
            except InvalidSetting as error:
                raise BadRequest(error.message) from None
            company_store.save_settings(tx, company.id, settings)
            updated.append("SummaryTransactionGroupBy")
    return {"updated": updated, "not_used": not_used}


def run_now(store: Store, user: ApiUser, body: object) -> dict[str, Any]:
    """ScheduledTask/RunNow: the connection's pull is due at once (a worker takes it)."""
    fields = Fields(body)
    connection_id = fields.whole("userConnectionId", 0) or 0
    now = utcnow()
    with store.transaction() as tx:
        connection = _connection(connex_store.connections(tx, user.company_id), connection_id)
        if connection.kind != ChannelKind.CUSTOM_STORE.value:
            raise BadRequest(
                f"Connection {connection.id} ({connection.kind}) has no scheduled pull: "
                "only a custom store's orders are pulled"
            )
        channel_store.request(tx, connection.id, TaskKind.PULL, now)
    return {"userConnectionId": connection.id, "requestedAt": _time(now)}


# --- the polling API -----------------------------------------------------------------------


def download(store: Store, user: ApiUser, delete_orders: bool) -> list[dict[str, Any]]:
    """DatabaseDownload/List: the exported orders waiting for this API user, oldest change
    first; with ``delete_orders`` they stop waiting (its cursor moves past them)."""
    with store.transaction() as tx:
        cursor = api_user_store.download_cursor(tx, user.id, lock=delete_orders)
        rows = export_store.since(tx, user.company_id, cursor, MAX_DOWNLOAD)
        if delete_orders and rows:
            api_user_store.advance_download_cursor(tx, user.id, rows[-1].cursor)
    return [row.as_json() for row in rows]
