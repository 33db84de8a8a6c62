"""Statements run on the driver's cursor give and take exactly what SQLAlchemy would.

The callbacks' hot statements skip SQLAlchemy's execution machinery (store/direct.py); a
value that came back differently (a naive timestamp, JSON left as text, a float for a
Numeric) or was written in another format (SQLite keeps timestamps as text, so a format
difference breaks comparisons) would be a silent bug. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from factories import make_order_json
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.domain import passwords
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, schema
from qbwc_bridge.store.direct import Direct, in_ids

NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
r, c, x = schema.runs, schema.companies, schema.exchanges


def _run(store: Store) -> int:
    company = company_service.add_company(store, "acme", "acme-user", "password-1")
    with store.transaction() as tx:
        run_id = store.runs.open_run(
            tx, company.id, passwords.ticket_digest("t"), NOW, NOW, inventory_due=True
        ).id
        tx.execute(
            update(r)
            .where(r.c.id == run_id)
            .values(summary={"suspects": [3, 1], "note": "é"}, inventory_state=None)
        )
        tx.execute(update(c).where(c.c.id == company.id).values(seconds_per_request=0.0512))
    return run_id


def test_rows_come_back_as_sqlalchemy_gives_them(store: Store) -> None:
    run_id = _run(store)
    statement = (
        select(
            r.c.id, r.c.ticket_hash, r.c.expires_at, r.c.inventory_due, r.c.inventory_state,
            r.c.summary, r.c.qbxml_version, c.c.seconds_per_request, c.c.settings,
        )
        .join(c, c.c.id == r.c.company_id)
        .where(r.c.id == bindparam("b_run"))
    )  # fmt: skip
    with store.transaction() as tx:
        direct = Direct(statement).rows(tx, {"b_run": run_id})
        expected = [tuple(row) for row in tx.execute(statement, {"b_run": run_id})]
    assert direct == expected
    (row,) = direct
    assert row[1] == passwords.ticket_digest("t")
    assert row[5] == {"suspects": [3, 1], "note": "é"}
    assert row[7] == Decimal("0.0512")
    assert row[3] is True and row[4] is None and row[6] is None


def _exchange_parameters() -> dict[str, Any]:
    """An exchange's columns as bind parameters, for the INSERTs run directly."""
    return {
        "run_id": bindparam("b_run"),
        "seq": bindparam("b_seq"),
        "request_xml": bindparam("b_xml"),
        "request_map": bindparam("b_map", type_=x.c.request_map.type),
        "sent_at": bindparam("b_now", type_=x.c.sent_at.type),
    }


def test_written_values_match_what_sqlalchemy_writes(store: Store) -> None:
    """A timestamp written directly compares equal to the same instant bound by SQLAlchemy."""
    run_id = _run(store)
    add = Direct(insert(x).values(**_exchange_parameters()).returning(x.c.id, x.c.sent_at))
    request_map = {"1": {"k": "InvoiceAdd", "o": 7}}
    with store.transaction() as tx:
        ((exchange_id, sent_at),) = add.rows(
            tx,
            {"b_run": run_id, "b_seq": 1, "b_xml": "<QBXML/>", "b_map": request_map, "b_now": NOW},
        )
    with store.transaction() as tx:
        found = tx.execute(select(x.c.id, x.c.request_map).where(x.c.sent_at == NOW)).all()
    assert [tuple(row) for row in found] == [(exchange_id, request_map)]
    assert sent_at.replace(tzinfo=UTC) == NOW


@pytest.mark.parametrize("wanted", [[], [2], [1, 3, 3], list(range(0, 3000, 2))])
def test_in_ids_selects_exactly_the_listed_ids(store: Store, wanted: list[int]) -> None:
    company = company_service.add_company(store, "acme", "acme-user", "password-1")
    with store.transaction() as tx:
        for n in range(1, 6):
            store.runs.open_run(
                tx, company.id, passwords.ticket_digest(f"t{n}"), NOW, NOW, inventory_due=False
            )
            tx.execute(update(r).where(r.c.company_id == company.id).values(status="closed"))
        ids = sorted(tx.execute(select(r.c.id)).scalars())
    chosen = [ids[i - 1] for i in wanted if 1 <= i <= len(ids)] + [10**9] * bool(wanted)
    statement = select(r.c.id).where(in_ids(r.c.id, "b_ids")).order_by(r.c.id)
    with store.transaction() as tx:
        direct = [row[0] for row in Direct(statement).rows(tx, {"b_ids": chosen})]
        through_sqlalchemy = list(tx.execute(statement, {"b_ids": chosen}).scalars())
    assert direct == through_sqlalchemy == sorted(set(chosen) & set(ids))


def test_executemany_counts_the_rows_of_every_parameter_set(store: Store) -> None:
    run_id = _run(store)
    rename = Direct(update(r).where(r.c.id == bindparam("b_id")).values(country=bindparam("b_c")))
    with store.transaction() as tx:
        assert rename.run(tx, [{"b_id": run_id, "b_c": "US"}]) == 1
        many = [
            {"b_id": run_id, "b_c": "CA"},
            {"b_id": -1, "b_c": "UK"},
            {"b_id": run_id, "b_c": "AU"},
        ]
        assert rename.run(tx, many) == 2
        assert tx.execute(select(r.c.country)).scalar_one() == "AU"


def test_rows_of_each_parameter_set_come_back_in_turn(store: Store) -> None:
    """An INSERT … RETURNING run for many parameter sets (psycopg's pipelined executemany,
    sqlite3's cache): the rows of each set in order, none for a set that inserted nothing,
    converted as SQLAlchemy converts them, and a driver error as SQLAlchemy's."""
    run_id = _run(store)
    dialect = postgresql if store.database.is_postgres else sqlite
    add = Direct(
        dialect.insert(x)
        .values(**_exchange_parameters())
        .on_conflict_do_nothing(index_elements=[x.c.run_id, x.c.seq])
        .returning(x.c.seq, x.c.sent_at)
    )
    sets = [
        {"b_run": run_id, "b_seq": seq, "b_xml": "<QBXML/>", "b_map": {}, "b_now": NOW}
        for seq in (1, 2)
    ]
    with store.transaction() as tx:
        assert add.rows_of_each(tx, []) == []
        first = add.rows_of_each(tx, sets)
        again = add.rows_of_each(tx, [sets[1], {**sets[0], "b_seq": 3}, sets[0]])
    assert [seq for seq, _ in first] == [1, 2] and [seq for seq, _ in again] == [3]
    assert all(sent_at.replace(tzinfo=UTC) == NOW for _, sent_at in first + again)
    with pytest.raises(IntegrityError), store.transaction() as tx:
        add.rows_of_each(tx, [{**sets[0], "b_seq": 4}, {**sets[0], "b_seq": None}])


def test_driver_errors_are_sqlalchemy_errors(store: Store) -> None:
    """The store's callers catch SQLAlchemy's exceptions (IntegrityError, OperationalError)."""
    _run(store)
    clash = Direct(update(c).values(name=bindparam("b_name")))
    company_service.add_company(store, "other", "other-user", "password-1")
    with pytest.raises(IntegrityError), store.transaction() as tx:
        clash.run(tx, [{"b_name": "acme"}])
    with store.transaction() as tx:
        assert sorted(tx.execute(select(c.c.name)).scalars()) == ["acme", "other"]


def test_expanding_parameters_are_refused_with_the_alternative() -> None:
    statement = select(r.c.id).where(r.c.id.in_(bindparam("b_ids", expanding=True)))
    store = Store.from_url("sqlite://")
    try:
        with pytest.raises(ValueError, match="in_ids"), store.transaction() as tx:
            Direct(statement).rows(tx, {"b_ids": [1]})
    finally:
        store.database.dispose()


def test_in_ids_lets_sqlite_look_the_ids_up(sqlite_url: str) -> None:
    """A boolean expression SQLite compares with 1 hides its IN from the planner: the
    statement that marks a message's payments then read all 100 000 payments each time."""
    store = Store.from_url(sqlite_url)
    payments = schema.payments
    marks = Direct(
        update(payments).where(in_ids(payments.c.id, "b_ids")).values(add_sent=bindparam("b_sent"))
    )
    try:
        with store.transaction() as tx:
            plan = tx.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + marks.sql(tx.dialect), (1, "[1, 2]")
            ).all()
    finally:
        store.database.dispose()
    details = [str(row[-1]) for row in plan]
    assert any("payments USING INTEGER PRIMARY KEY" in d for d in details), details
    assert not any(d.startswith("SCAN payments") for d in details), details


def test_a_replaced_connection_gets_a_cursor_of_its_own(store: Store) -> None:
    """The cursor kept with a pooled connection must not outlive it (PostgreSQL restart)."""
    run_id = _run(store)
    country = Direct(select(r.c.country).where(r.c.id == bindparam("b_run")))
    with store.transaction() as tx:
        assert country.rows(tx, {"b_run": run_id}) == [(None,)]
        first = tx.connection.dbapi_connection
    with store.database.engine.connect() as conn:
        assert conn.connection.dbapi_connection is first  # the pool hands it out again
        conn.invalidate()  # what the pool does with a connection the server dropped
    with store.transaction() as tx:
        assert tx.connection.dbapi_connection is not first
        assert country.rows(tx, {"b_run": run_id}) == [(None,)]


def _generic_plan(tx: Any, direct: Direct, literals: dict[str, str]) -> str:
    """EXPLAIN ANALYZE of the plan PostgreSQL caches for ``direct`` (its generic plan), run
    with ``literals`` (SQL text per bind parameter name; the statement's constants as they
    are)."""
    from sqlalchemy.dialects.postgresql import psycopg

    compiled = direct.statement.compile(dialect=psycopg.dialect(paramstyle="numeric_dollar"))

    def literal(name: str) -> str:
        if name in literals:
            return literals[name]
        value = compiled.binds[name].effective_value  # a constant the statement carries
        return str(value).lower() if isinstance(value, bool | int) else f"'{value}'"

    arguments = ", ".join(literal(name) for name in compiled.positiontup or ())
    tx.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    tx.exec_driver_sql(f"PREPARE generic AS {compiled}")
    try:
        explained = tx.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE generic({arguments})")
        return "\n".join(str(row[0]) for row in explained)
    finally:
        tx.exec_driver_sql("DEALLOCATE generic")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_answer_finds_the_waiting_exchange_without_reading_the_others(store: Store) -> None:
    """PostgreSQL keeps one generic plan per statement. Asked for "the run's last
    unanswered exchange", that plan read and sorted all of a run's exchanges at every
    receiveResponseXML (150 late in a run); asked for "the last exchange, if unanswered",
    it is one step back along the run's index, whatever the statistics say."""
    from qbwc_bridge.store import runs

    run_id = _run(store)
    with store.transaction() as tx:
        for seq in range(300):
            store.runs.add_exchange(tx, run_id, "<QBXML/>" * 100, {}, NOW)
            if seq < 299:
                store.runs.answer_pending(tx, run_id, "<QBXML/>", "", "", NOW)
        tx.exec_driver_sql("ANALYZE exchanges")
        literals = {"b_xml": "'<QBXML/>'", "b_hresult": "''", "b_message": "''"}
        literals |= {"b_now": "now()", "b_run": str(run_id)}
        plan = _generic_plan(tx, runs._ANSWER_PENDING, literals)
        waiting = tx.exec_driver_sql("SELECT count(*) FROM exchanges WHERE received_at IS NULL")
        assert waiting.scalar_one() == 0  # the plan ran: the last exchange is answered
    assert "Index Scan Backward" in plan, plan
    assert "Sort" not in plan and "Bitmap" not in plan, plan


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_orders_named_by_id_are_found_by_their_keys(store: Store) -> None:
    """Statistics taken before any claim say no order is leased to anyone; the plans
    PostgreSQL then caches must still fetch the one to three orders a message names by
    primary key, not walk all of the run's orders through the lease index. And it must
    cache them: re-planning the page of orders cost more than running it."""
    from qbwc_bridge.store import orders

    run_id = _run(store)
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber=f"A-{n}") for n in range(400)]
    )
    with store.transaction() as tx:
        tx.exec_driver_sql("ANALYZE orders")  # as at enqueue: no order leased yet
        company_id = store.runs.get(tx, run_id).company_id
        assert store.orders.claim_batch(tx, company_id, run_id, 250, NOW) == 250
        named = [order.id for order in store.orders.claimed_by(tx, run_id)][100:102]
        ids = {"b_run": str(run_id), "b_ids": f"'{{{named[0]},{named[1]}}}'"}
        plans = {
            "claimed": _generic_plan(tx, orders._CLAIMED_IDS, ids),
            "adds sent": _generic_plan(tx, orders._ORDER_ADDS_SENT, ids),
            "recheck": _generic_plan(tx, orders._RECHECK_ORDERS, {**ids, "b_now": "now()"}),
        }
    with store.transaction() as tx:  # without the tests' SET LOCAL of _generic_plan
        for _ in range(8):  # the driver prepares it on the fifth run
            assert len(store.orders.claimed_by(tx, run_id, order_ids=named)) == 2
        # ... and PostgreSQL plans it once, not again at every run, as it would for a
        # list of ids under its default plan_cache_mode.
        planned = tx.exec_driver_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%%FROM orders%%' AND statement LIKE '%%= ANY%%'"
        ).all()
        assert planned and all(custom == 0 for _generic, custom in planned), planned
    for name, plan in plans.items():
        assert "Index Cond: (id = ANY" in plan, (name, plan)
        assert "ix_orders_lease" not in plan, (name, plan)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_run_reads_only_the_orders_it_still_works_on(store: Store) -> None:
    """Its next page and its waiting count go straight to its orders in progress through
    the lease index, not through every order it already finished (up to batch_max)."""
    from qbwc_bridge.store import orders, runs

    run_id = _run(store)
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber=f"A-{n}") for n in range(300)]
    )
    with store.transaction() as tx:
        company_id = store.runs.get(tx, run_id).company_id
        assert store.orders.claim_batch(tx, company_id, run_id, 250, NOW) == 250
        finished = [order.id for order in store.orders.claimed_by(tx, run_id)][:240]
        tx.execute(
            update(schema.orders).where(schema.orders.c.id.in_(finished)).values(status="synced")
        )
        tx.exec_driver_sql("ANALYZE orders")
        page = _generic_plan(
            tx, orders._CLAIMED_PAGE, {"b_run": str(run_id), "b_after": "0", "b_limit": "1"}
        )
        ticket = "'\\x" + passwords.ticket_digest("t").hex() + "'"
        lease = _generic_plan(
            tx,
            runs._LEASE_COUNTING,
            {"b_ticket": ticket, "b_now": "'2020-01-01'", "b_seen": "now()"}
            | {"b_expires": "now() + interval '1 day'"},
        )
    for name, plan in {"page": page, "lease": lease}.items():
        scans = [line for line in plan.splitlines() if "ix_orders_lease" in line]
        assert scans, (name, plan)
        assert "Rows Removed by Filter" not in plan, (name, plan)
        assert "(status)::text" in plan.split("ix_orders_lease", 1)[1].split("->", 1)[0], (
            name,
            plan,
        )
