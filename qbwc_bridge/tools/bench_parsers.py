"""Speed of streaming a large order file and of paging the stand-in's items, as figures."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from lxml import etree

from qbwc_bridge.domain.jsonstream import iter_json_array
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock
from qbwc_bridge.simulator.schema import default_schemas

ORDER_TEMPLATE = (
    '{"OrderNumber": "%d", "OrderTotal": 12.50, "orderDetails": [{"sku": "MUG-CLASSIC"}]}'
)
PAGE_SIZE = 500
_NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=-4)))


def bench_jsonstream(orders: int) -> dict[str, float]:
    """Stream a JSON array of ``orders`` small orders from a file, one at a time."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.json"
        with path.open("w", encoding="utf-8") as handle:
            handle.write("[\n")
            handle.write(",\n".join(ORDER_TEMPLATE % n for n in range(orders)))
            handle.write("\n]\n")
        size = path.stat().st_size
        started = time.perf_counter()
        with path.open("rb") as stream:
            seen = sum(1 for _ in iter_json_array(stream))
        seconds = time.perf_counter() - started
    if seen != orders:
        raise RuntimeError(f"streamed {seen} orders, expected {orders}")
    return {
        "jsonstream_orders": float(orders),
        "jsonstream_bytes": float(size),
        "jsonstream_seconds": seconds,
        "jsonstream_orders_per_second": orders / seconds,
    }


def _message(request: etree._Element) -> str:
    root = etree.Element("QBXML")
    etree.SubElement(root, "QBXMLMsgsRq", onError="stopOnError").append(request)
    root.addprevious(etree.ProcessingInstruction("qbxml", 'version="13.0"'))
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8").decode()


def _item_query(attributes: dict[str, str]) -> etree._Element:
    request = etree.Element("ItemInventoryQueryRq", attributes)
    etree.SubElement(request, "MaxReturned").text = str(PAGE_SIZE)
    return request


def bench_item_iterator(items: int) -> dict[str, float]:
    """Page over ``items`` inventory items of the stand-in QuickBooks with an iterator."""
    stock = {
        f"SKU-{n:05d}": ItemStock(
            f"SKU-{n:05d}", Decimal(n), time_modified=_NOW - timedelta(minutes=n % 7)
        )
        for n in range(items)
    }
    quickbooks = FakeQuickBooks(items=stock, clock=lambda: _NOW)
    started = time.perf_counter()
    seen = pages = 0
    request = _item_query({"iterator": "Start"})
    while True:
        answer = parse_xml(quickbooks.process(_message(request)))
        rs = answer.find("QBXMLMsgsRs/ItemInventoryQueryRs")
        if rs is None or rs.get("statusCode") != "0":
            raise RuntimeError(f"page {pages + 1} did not answer status 0")
        pages += 1
        seen += len(rs.findall("ItemInventoryRet"))
        if rs.get("iteratorRemainingCount") == "0":
            break
        request = _item_query({"iterator": "Continue", "iteratorID": rs.get("iteratorID", "")})
    seconds = time.perf_counter() - started
    if seen != items:
        raise RuntimeError(f"paged over {seen} items, expected {items}")
    return {
        "iterator_items": float(items),
        "iterator_pages": float(pages),
        "iterator_schema_validated": 1.0 if default_schemas() is not None else 0.0,
        "iterator_seconds": seconds,
        "iterator_items_per_second": items / seconds,
    }


def run(*, orders: int = 100_000, items: int = 10_000) -> dict[str, float]:
    """Both figures, rounded for reading (``qbwc-bridge bench --only parsers``)."""
    figures = {**bench_jsonstream(orders), **bench_item_iterator(items)}
    return {key: round(value, 3) for key, value in figures.items()}
