"""Drive the real service as a killable subprocess with stand-in Web Connectors, and audit the books.

Integration tests of many workers and of crashes share this: a server they can SIGKILL and
restart on the same database, companies seeded straight into that database, orders with a
payment each, a Web Connector that can stop dead after its k-th callback, and the checks
that every order is in the stand-in QuickBooks exactly once, to the cent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from enginedriver import quickbooks
from factories import make_order_json, make_payment
from servers import GUNICORN_COMMAND, REPO, free_port, gunicorn_env, wait_until_up
from sqlalchemy import select

from qbwc_bridge.domain import passwords
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.simulator.webconnector import RunReport, WebConnector
from qbwc_bridge.store import Store, schema, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store.schema import metadata

PASSWORD = "correct horse battery"
# One hash for every seeded company: scrypt costs ~30 ms, and the salt's uniqueness is not
# what these tests are about.
_HASH: list[str] = []

# The app's log format (qbwc_bridge/wsgi.py): asctime levelname process name message.
CALLBACK_LINE = re.compile(
    r" INFO (?P<pid>\d+) qbwc_bridge\.soap callback=(?P<callback>\w+) run=(?P<run>[0-9a-f-]+) "
)


# --- the service as a subprocess -------------------------------------------------------------


@dataclass
class ServiceProcess:
    """gunicorn (deploy/gunicorn.conf.py) in its own process group, logging to a file at INFO.

    tests/servers.py's gunicorn() pipes stderr without reading it, which stalls the service
    once the callback log lines fill the pipe; and it cannot be SIGKILLed and restarted.
    """

    database_url: str
    log_path: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/qbwc"

    def start(self) -> ServiceProcess:
        env = {
            **gunicorn_env(self.database_url, self.port, self.workers),
            "QBWC_BRIDGE_LOG_LEVEL": "INFO",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                GUNICORN_COMMAND,
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: SIGKILL reaches every worker
            )
        try:
            wait_until_up(self.base, self.process, timeout=30)
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (arbiter and workers) and reap it."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def service(
    database_url: str,
    log_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[ServiceProcess]:
    server = ServiceProcess(database_url, log_path, workers, dict(env or {})).start()
    try:
        yield server
    finally:
        server.stop()


def callback_pids(log_text: str) -> dict[str, set[int]]:
    """For each run tag (see qbwc_bridge.soap.guard.run_ref), the worker pids that served it."""
    pids: dict[str, set[int]] = defaultdict(set)
    for match in CALLBACK_LINE.finditer(log_text):
        if match["run"] != "-":
            pids[match["run"]].add(int(match["pid"]))
    return pids


# --- companies and orders ----------------------------------------------------------------------


def company_orders(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` orders of distinct customers, each with one payment (distinct references)."""
    return [
        make_order_json(
            OrderNumber=f"{prefix}-{i}",
            CustomerName=f"{prefix} Customer {i}",
            billingAddress={"firstName": f"First{i}", "lastName": f"{prefix}Last{i}"},
            Payments=[make_payment(PaymentAmount=f"{10 + i}.00", ReferenceNumber=f"{prefix}-P{i}")],
        )
        for i in range(count)
    ]


def seed_company(
    store: Store, name: str, orders: Sequence[dict[str, Any]], *, inventory: bool = False
) -> None:
    """Register ``name`` (user ``name-user``) and queue its orders; inventory off unless asked."""
    if not _HASH:
        _HASH.append(passwords.hash_password(PASSWORD))
    with store.transaction() as tx:
        company = company_store.add(tx, name, f"{name}-user", _HASH[0])
        if not inventory:
            company_store.set_inventory_due_at(tx, company.id, utcnow() + timedelta(days=1))
    report = order_service.enqueue(store, name, list(orders))
    assert report.as_dict()["queued"] == len(orders), report.as_dict()


def fresh_postgres(url: str) -> Store:
    """The PostgreSQL test database emptied (it is shared by the tests of one worker)."""
    store = Store.from_url(url)
    with store.transaction() as tx:
        names = ", ".join(table.name for table in metadata.sorted_tables)
        tx.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return store


def claims(store: Store) -> dict[str, int]:
    """How many times each order (by number) was claimed by a run."""
    with store.transaction() as tx:
        rows = tx.execute(select(schema.orders.c.order_number, schema.orders.c.attempts))
        return {str(number): int(attempts) for number, attempts in rows}


def runs_by_company(store: Store) -> dict[str, list[str]]:
    """Every run's status, per company name."""
    found: dict[str, list[str]] = defaultdict(list)
    query = select(schema.companies.c.name, schema.runs.c.status).join(
        schema.runs, schema.runs.c.company_id == schema.companies.c.id
    )
    with store.transaction() as tx:
        for name, status in tx.execute(query):
            found[str(name)].append(str(status))
    return found


def statuses(store: Store, name: str) -> dict[str, str]:
    return {o["order_number"]: o["status"] for o in order_service.status(store, name)["orders"]}


def assert_books(fake: FakeQuickBooks, orders: Iterable[dict[str, Any]], label: str = "") -> None:
    """Each order is one invoice of its OrderTotal, each payment is in QuickBooks exactly once."""
    orders = list(orders)
    invoices = fake.invoices()
    refs = sorted(str(i.ref_number) for i in invoices)
    assert refs == sorted(o["OrderNumber"] for o in orders), f"{label} invoices: {refs}"
    by_ref = {i.ref_number: i for i in invoices}
    for order in orders:
        assert by_ref[order["OrderNumber"]].total == Decimal(str(order["OrderTotal"])), label
    expected_payments = sorted(
        (str(p["ReferenceNumber"]), Decimal(str(p["PaymentAmount"])), o["OrderNumber"])
        for o in orders
        for p in o["Payments"]
    )
    seen = []
    for payment in fake.payments:
        (applied,) = payment.applied
        invoice = next(i for i in invoices if i.txn_id == applied.invoice_txn_id)
        seen.append((str(payment.ref_number), payment.total, str(invoice.ref_number)))
    assert sorted(seen) == expected_payments, f"{label} payments: {sorted(seen)}"
    assert len(fake.customers) == len(orders), f"{label} customers: {fake.customers}"


def new_quickbooks() -> FakeQuickBooks:
    return quickbooks()


# --- a Web Connector that stops where the test says -------------------------------------------


class PausingWebConnector(WebConnector):
    """The stand-in Web Connector, which after its ``pause_after``-th callback calls ``at_pause``.

    ``at_pause`` runs between two callbacks (e.g. kill the server, or cut the database
    connections); the conversation then goes on as the real Web Connector's would.
    """

    def __init__(
        self,
        *args: Any,
        pause_after: int = 0,
        at_pause: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pause_after = pause_after
        self.at_pause = at_pause
        self.calls: list[str] = []
        self.paused = False

    def _call(self, run: Any, method: str, **arguments: Any) -> Any:
        result = super()._call(run, method, **arguments)
        self.calls.append(method)
        if len(self.calls) == self.pause_after and self.at_pause is not None:
            self.paused = True
            self.at_pause()
        return result


def web_connector(url: str, name: str, fake: FakeQuickBooks, **kwargs: Any) -> PausingWebConnector:
    return PausingWebConnector(url, f"{name}-user", PASSWORD, fake, timeout=30, **kwargs)


def run_until_synced(
    url: str,
    name: str,
    fake: FakeQuickBooks,
    store: Store,
    *,
    deadline_seconds: float = 20,
    wait: float = 0.25,
) -> list[RunReport]:
    """Scheduled runs until the company's queue is all synced ('busy' while a lease runs out)."""
    reports: list[RunReport] = []
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        report = web_connector(url, name, fake).run()
        reports.append(report)
        if set(statuses(store, name).values()) == {"synced"}:
            return reports
        time.sleep(wait)
    runs = [(r.outcome, r.auth_result, r.last_error or r.failure) for r in reports]
    raise AssertionError(f"{name} not synced in time: {statuses(store, name)}; runs: {runs}")


class Gate:
    """Holds paused Web Connectors until every one of them has reached its pause point."""

    def __init__(self, parties: int) -> None:
        self._arrived = threading.Barrier(parties + 1)
        self._release = threading.Event()

    def pause(self) -> None:
        self._arrived.wait(timeout=60)
        self._release.wait(timeout=60)

    def run(self, connector: PausingWebConnector) -> RunReport:
        """``connector.run()`` pausing at this gate; a run that ended early still checks in."""
        connector.at_pause = self.pause
        report = connector.run()
        if not connector.paused:
            self._arrived.wait(timeout=60)
        return report

    def wait_all_paused(self) -> None:
        self._arrived.wait(timeout=60)

    def release(self) -> None:
        self._release.set()
