"""Drive RunEngine directly, callback by callback, against the stand-in QuickBooks (no HTTP).

It does what the Web Connector does, so engine tests can check the books without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from strategies import SKUS

from qbwc_bridge.domain.runs import Run
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.simulator.quickbooks import (
    FakeQuickBooks,
    ItemStock,
    QuickBooksFailure,
    ResponseLost,
)
from qbwc_bridge.store import Store, schema

SERVICE_ITEMS = {
    "Shipping": "ItemOtherCharge",
    "Discount": "ItemDiscount",
    "Sales Tax": "ItemOtherCharge",
}


def quickbooks(**options: object) -> FakeQuickBooks:
    """A stand-in QuickBooks that knows the test SKUs and the shipping/discount/tax items."""
    fake = FakeQuickBooks(**options)  # type: ignore[arg-type]
    for sku in SKUS:
        fake.set_item(ItemStock(full_name=sku, quantity_on_hand=Decimal(100)))
    for name, kind in SERVICE_ITEMS.items():
        fake.set_item(ItemStock(full_name=name, kind=kind))  # type: ignore[arg-type]
    return fake


@dataclass
class RunResult:
    answer: str
    exchanges: int = 0
    progress: list[int] = field(default_factory=list)
    last_error: str = ""
    closed: str = ""
    lost: bool = False


def run_once(
    engine: RunEngine,
    fake: FakeQuickBooks,
    username: str,
    password: str,
    *,
    major: int | None = None,
    minor: int = 0,
    country: str = "US",
    max_exchanges: int = 2000,
    company_file: str = r"C:\Company\Sample.QBW",
) -> RunResult:
    """One Web Connector run; stops without closeConnection when a response is lost."""
    auth = engine.authenticate(username, password)
    result = RunResult(auth.answer)
    if auth.answer in ("none", "nvu", "busy"):
        return result
    fake.begin_session()
    major = major if major is not None else int(fake.max_version.split(".")[0])
    hcp = fake.hcp_response()
    for _ in range(max_exchanges):
        request = engine.next_request(auth.ticket, hcp, company_file, country, major, minor)
        hcp = ""
        if not request:
            result.last_error = engine.last_error(auth.ticket)
            # A finished run ends with receiveResponseXML answering 100: an empty
            # sendRequestXML makes the Web Connector show getLastError as an error.
            assert result.last_error != "Nothing left to do in this run.", result
            break
        try:
            response = fake.process(request)
            percent = engine.record_response(auth.ticket, response, "", "")
        except ResponseLost:
            result.lost = True
            return result
        except QuickBooksFailure as failure:
            percent = engine.record_response(auth.ticket, "", failure.hresult, failure.message)
        result.exchanges += 1
        result.progress.append(percent)
        if percent < 0:
            result.last_error = engine.last_error(auth.ticket)
            break
        if percent >= 100:
            break
    result.closed = engine.close(auth.ticket)
    return result


def last_run(store: Store, company: str = "acme") -> Run:
    """The company's newest run, as the store keeps it."""
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, company).id
        run_id = tx.execute(
            select(func.max(schema.runs.c.id)).where(schema.runs.c.company_id == company_id)
        ).scalar_one()
        return store.runs.get(tx, run_id)
