"""The exported_transactions cursor feed under concurrent writers: a reader never skips a row.

Two threads write pages of transactions for one company at once, each in transactions of
its own (as two runs' callbacks, or a run and a full export, would), while a third reads
the feed by cursor the way a channel does. Every write allocates its cursors under the
company row's lock and commits them before the next writer allocates, so the reader sees
cursors in order without a hole it would later find filled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from qbwc_bridge.domain.exports import ExportedTxn
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.store import Store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAGES, PAGE = 30, 17
COMMITS = (
    "two writers and a reader each need a connection of their own, committing for real; on "
    "one bound connection they would take turns and never race"
)


def txn(writer: int, number: int, version: int = 0) -> ExportedTxn:
    return ExportedTxn(
        qb_txn_id=f"{writer}-{number}",
        kind=TxnKind.INVOICE,
        qb_time_modified=f"2026-03-02T12:{version:02d}:00+00:00",
        order={"OrderNumber": f"W{writer}-{number}", "OrderTotal": f"{version}.00"},
    )


class Reader:
    """Polls the feed like a channel, remembering its cursor; checks what it is given."""

    def __init__(self, store: Store, company_id: int) -> None:
        self.store, self.company_id = store, company_id
        self.cursor = 0
        self.seen: list[tuple[str, int, str]] = []
        self.latest: dict[str, str] = {}

    def poll(self, *, contiguous: bool) -> int:
        with self.store.transaction() as tx:
            rows = self.store.exports.since(tx, self.company_id, self.cursor, 23)
        for row in rows:
            assert row.cursor > self.cursor, "the feed went backwards"
            if contiguous:
                assert row.cursor == self.cursor + 1, f"skipped {self.cursor + 1}"
            self.cursor = row.cursor
            self.seen.append((row.qb_txn_id, row.cursor, row.order["OrderTotal"]))
            self.latest[row.qb_txn_id] = row.order["OrderTotal"]
        return len(rows)

    def drain(self, *, contiguous: bool) -> None:
        while self.poll(contiguous=contiguous):
            pass


def race(writers: list[Callable[[], None]], reader: Reader, *, contiguous: bool) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        return run

    def read() -> None:
        while not done.is_set():
            reader.poll(contiguous=contiguous)

    threads = [threading.Thread(target=guarded(work)) for work in writers]
    polling = threading.Thread(target=guarded(read))
    polling.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    polling.join(timeout=120)
    assert not errors, errors
    reader.drain(contiguous=contiguous)


# PostgreSQL only: SQLite has one writer at a time, so there is no race to lose.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.commits(COMMITS)
def test_a_reader_never_skips_a_row_while_two_writers_race(store: Store) -> None:
    company_id = company_service.add_company(store, "acme", "acme-user", "a-password").id

    def writer(number: int, version: int) -> Callable[[], None]:
        def write() -> None:
            for page in range(PAGES):
                with store.transaction() as tx:
                    store.exports.write(
                        tx,
                        company_id,
                        [txn(number, page * PAGE + i, version) for i in range(PAGE)],
                        [],
                        NOW,
                    )

        return write

    # New transactions only: the cursors are exactly 1..N, so any hole is a skip.
    reader = Reader(store, company_id)
    race([writer(1, 1), writer(2, 1)], reader, contiguous=True)
    total = 2 * PAGES * PAGE
    assert [cursor for _, cursor, _ in reader.seen] == list(range(1, total + 1))

    # Both writers now change every transaction again (one of them twice): the reader
    # ends with the latest version of each, having seen each version at most once.
    race([writer(1, 2), writer(2, 2), writer(2, 3)], reader, contiguous=False)
    assert len(reader.latest) == total
    assert all(reader.latest[f"1-{i}"] == "2.00" for i in range(PAGES * PAGE))
    assert all(reader.latest[f"2-{i}"] in ("2.00", "3.00") for i in range(PAGES * PAGE))
    with store.transaction() as tx:
        final = {
            row.qb_txn_id: row.order["OrderTotal"]
            for row in store.exports.since(tx, company_id, 0, 10**6)
        }
    assert reader.latest == final
    assert len({(txn_id, cursor) for txn_id, cursor, _ in reader.seen}) == len(reader.seen)
