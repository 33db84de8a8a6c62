"""The admin console (/admin) through the service's own WSGI application, on SQLite and
PostgreSQL: its login (CSRF, cookie flags, lockout, logout), its pages (pagination,
filters, escaping) and its buttons, each calling the service the command line calls."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from enginedriver import quickbooks, run_once
from factories import BILLING_ADDRESS, make_order_json
from sqlalchemy import update
from werkzeug.test import Client, TestResponse

from qbwc_bridge import cli, qwc
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.domain.orders import REFNUMBER_CONFLICT
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import admin_users as admin_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import posting as posting_service
from qbwc_bridge.store import Store, schema, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.web.app import make_wsgi_app

ADMIN, ADMIN_PASSWORD = "operator", "console-secret-1"
COMPANY, WC_USER, WC_PASSWORD = "acme", "acme-wc", "acme-password-1"


@pytest.fixture
def console(store: Store, settings: Settings) -> Client:
    company_service.add_company(store, COMPANY, WC_USER, WC_PASSWORD)
    admin_service.add(store, ADMIN, ADMIN_PASSWORD)
    return Client(make_wsgi_app(settings, store))


def _token(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found.group(1)


def login(client: Client, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> TestResponse:
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": _token(form), "username": name, "password": password},
    )


def logged_in(client: Client) -> str:
    """Log in; the CSRF token of the session's forms."""
    assert login(client).status_code == 303
    return _token(client.get("/admin/"))


def _set_status(store: Store, number: str, **values: Any) -> None:
    with store.transaction() as tx:
        tx.execute(
            update(schema.orders).where(schema.orders.c.order_number == number).values(**values)
        )


def _text(page: TestResponse) -> str:
    return unescape(page.get_data(as_text=True))


# --- authentication ----------------------------------------------------------------------


def test_every_page_needs_a_session(console: Client) -> None:
    for path in (
        "/admin",
        "/admin/",
        f"/admin/orders?company={COMPANY}",
        f"/admin/order?company={COMPANY}&number=1",
        f"/admin/runs?company={COMPANY}",
        f"/admin/channels?company={COMPANY}",
        f"/admin/inventory?company={COMPANY}",
        f"/admin/settings?company={COMPANY}",
        f"/admin/qwc?company={COMPANY}&url=https://bridge.example.com/qbwc",
    ):
        answer = console.get(path)
        assert answer.status_code in (302, 308), path
        if answer.status_code == 302:
            assert answer.headers["Location"].startswith("/admin/login"), path
    # A POST without a session is refused, and changes nothing.
    assert console.post("/admin/order/retry", data={"company": COMPANY}).status_code == 403


def test_login_sets_a_strict_cookie_and_logout_ends_the_session_on_the_server(
    console: Client,
) -> None:
    answer = login(console)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("qbwc_admin="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # localhost over http
    token = cookie.split(";")[0].split("=", 1)[1]
    assert console.get("/admin/").status_code == 200
    csrf = _token(console.get("/admin/"))
    assert console.post("/admin/logout", data={"csrf_token": csrf}).status_code == 303
    # The old cookie, sent again, opens nothing: the session is gone on the server.
    console.set_cookie("qbwc_admin", token, path="/admin")
    assert console.get("/admin/").status_code == 302


def test_the_cookie_is_secure_off_localhost_and_behind_an_https_proxy(console: Client) -> None:
    form = console.get("/admin/login", base_url="http://bridge.example.com")
    answer = console.post(
        "/admin/login",
        base_url="http://bridge.example.com",
        data={"csrf_token": _token(form), "username": ADMIN, "password": ADMIN_PASSWORD},
    )
    assert answer.status_code == 303
    assert all("Secure" in h for h in answer.headers.getlist("Set-Cookie"))
    # localhost behind the trusted proxy (127.0.0.1), which says the client spoke HTTPS
    proxied = console.get(
        "/admin/login",
        headers={"X-Forwarded-Proto": "https"},
        environ_overrides={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert "Secure" in proxied.headers["Set-Cookie"]
    # ... which an untrusted client cannot claim
    direct = console.get(
        "/admin/login",
        headers={"X-Forwarded-Proto": "https"},
        environ_overrides={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert "Secure" not in direct.headers["Set-Cookie"]


def test_login_without_its_csrf_token_is_refused(console: Client) -> None:
    console.get("/admin/login")
    answer = console.post("/admin/login", data={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert answer.status_code == 400
    assert "security token" in _text(answer)
    assert not any(h.startswith("qbwc_admin=") for h in answer.headers.getlist("Set-Cookie"))


def test_wrong_passwords_lock_the_login_out(console: Client, settings: Settings) -> None:
    answer = login(console, password="wrong-password")
    assert answer.status_code == 401 and "Wrong username or password" in _text(answer)
    for _ in range(settings.max_failed_logins - 1):
        assert login(console, password="wrong-password").status_code == 401
    locked = login(console)  # the right password, refused unchecked while locked
    assert locked.status_code == 429
    assert "Locked out until" in _text(locked)
    assert console.get("/admin/").status_code == 302


def test_a_form_without_the_csrf_token_changes_nothing(console: Client, store: Store) -> None:
    order_service.enqueue(store, COMPANY, [make_order_json(OrderNumber="E-1")])
    _set_status(store, "E-1", status="error", error="boom")
    csrf = logged_in(console)
    for forged in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf[:-1]}):
        answer = console.post(
            "/admin/order/retry", data={"company": COMPANY, "number": "E-1", **forged}
        )
        assert answer.status_code == 400
    status = order_service.status(store, COMPANY)["orders"][0]["status"]
    assert status == "error"
    answer = console.post(
        "/admin/order/retry", data={"company": COMPANY, "number": "E-1", "csrf_token": csrf}
    )
    assert answer.status_code == 200
    assert order_service.status(store, COMPANY)["orders"][0]["status"] == "pending"


# --- pages -------------------------------------------------------------------------------


def test_the_companies_page_counts_orders_by_status_and_shows_the_last_run(
    console: Client, store: Store, settings: Settings
) -> None:
    order_service.enqueue(store, COMPANY, [make_order_json(OrderNumber=f"G-{i}") for i in range(3)])
    fake = quickbooks()
    run_once(RunEngine(store, settings), fake, WC_USER, WC_PASSWORD)
    order_service.enqueue(store, COMPANY, [make_order_json(OrderNumber="G-late")])
    _set_status(store, "G-late", status="error", error="x")
    logged_in(console)
    page = _text(console.get("/admin/"))
    row = page.split(f">{COMPANY}</a>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num">(?:<a [^>]+>)?(\d+)', row)
    statuses = [s.value for s in __import__("qbwc_bridge").domain.orders.OrderStatus]
    counts = dict(zip(statuses, (int(c) for c in cells[: len(statuses)]), strict=True))
    assert counts["synced"] == 3 and counts["error"] == 1 and counts["pending"] == 0
    assert "closed" in row or "ok" in row or "done" in row  # the last run's outcome


def test_orders_are_paginated_filtered_and_searched(console: Client, store: Store) -> None:
    orders = [
        make_order_json(
            OrderNumber=f"P-{i:03}", billingAddress={**BILLING_ADDRESS, "lastName": f"Buyer{i % 7}"}
        )
        for i in range(120)
    ]
    order_service.enqueue(store, COMPANY, orders)
    for i in range(0, 120, 10):
        _set_status(store, f"P-{i:03}", status="error", error=f"problem {i}")
    logged_in(console)
    seen: list[str] = []
    path = f"/admin/orders?company={COMPANY}"
    pages = 0
    while path:
        page = _text(console.get(path))
        numbers = re.findall(r"number=(P-\d{3})", page)
        seen += numbers
        pages += 1
        older = re.search(r'<a rel="next" href="([^"]+)"', page)
        path = older.group(1) if older else ""
        assert len(numbers) == (50 if path else 20)
    assert pages == 3
    assert seen == [f"P-{i:03}" for i in reversed(range(120))]  # newest first, none twice

    errors = _text(console.get(f"/admin/orders?company={COMPANY}&status=error"))
    assert sorted(re.findall(r"number=(P-\d{3})", errors)) == [
        f"P-{i:03}" for i in range(0, 120, 10)
    ]
    assert "problem 10" in errors
    by_number = _text(console.get(f"/admin/orders?company={COMPANY}&q=P-11"))
    assert sorted(set(re.findall(r"number=(P-\d{3})", by_number))) == [
        f"P-{i}" for i in range(110, 120)
    ]
    by_customer = _text(console.get(f"/admin/orders?company={COMPANY}&q=Buyer3"))
    found = set(re.findall(r"number=(P-\d{3})", by_customer))
    assert found == {f"P-{i:03}" for i in range(120) if i % 7 == 3}
    bad = console.get(f"/admin/orders?company={COMPANY}&status=lost")
    assert bad.status_code == 400 and "Unknown order status" in _text(bad)
    assert console.get("/admin/orders?company=nobody").status_code == 404


def test_values_from_orders_are_escaped(console: Client, store: Store) -> None:
    hostile = "<script>alert(1)</script>"
    order_service.enqueue(
        store, COMPANY, [make_order_json(OrderNumber="X<1>", CustomerName=hostile)]
    )
    _set_status(store, "X<1>", status="error", error=hostile)
    logged_in(console)
    for path in (f"/admin/orders?company={COMPANY}", f"/admin/order?company={COMPANY}&number=X<1>"):
        raw = console.get(path).get_data(as_text=True)
        assert "<script>alert" not in raw
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


def test_the_order_page_retries_an_errored_order_and_says_why_not_otherwise(
    console: Client, store: Store
) -> None:
    order_service.enqueue(store, COMPANY, [make_order_json(OrderNumber="R-1")])
    _set_status(store, "R-1", status="error", error="QuickBooks said no: fix the item")
    csrf = logged_in(console)
    page = _text(console.get(f"/admin/order?company={COMPANY}&number=R-1"))
    assert "QuickBooks said no: fix the item" in page
    assert '"order_number": "R-1"' in page  # the order as queued
    assert 'value="retry"' in page
    done = console.post(
        "/admin/order/retry", data={"company": COMPANY, "number": "R-1", "csrf_token": csrf}
    )
    assert done.status_code == 200 and "back in the queue" in _text(done)
    again = console.post(
        "/admin/order/retry", data={"company": COMPANY, "number": "R-1", "csrf_token": csrf}
    )
    assert again.status_code == 409
    assert "order R-1 is pending, not in error: nothing to retry" in _text(again)


def test_resolve_queues_a_refnumber_conflict_with_the_answer(console: Client, store: Store) -> None:
    order_service.enqueue(
        store, COMPANY, [make_order_json(OrderNumber=n) for n in ("C-1", "C-2", "C-3")]
    )
    for number in ("C-1", "C-2"):
        _set_status(store, number, status="error", error="conflict", error_code=REFNUMBER_CONFLICT)
    _set_status(store, "C-3", status="error", error="no such item", error_code=3140)
    csrf = logged_in(console)
    # Only a RefNumber conflict offers the two ways out.
    assert "Resolve: add it anyway" in _text(
        console.get(f"/admin/order?company={COMPANY}&number=C-1")
    )
    assert "Resolve:" not in _text(console.get(f"/admin/order?company={COMPANY}&number=C-3"))
    for number, choice in (("C-1", "duplicate"), ("C-2", "add")):
        answer = console.post(
            "/admin/order/resolve",
            data={"company": COMPANY, "number": number, "resolution": choice, "csrf_token": csrf},
        )
        assert answer.status_code == 200, _text(answer)
    with store.transaction() as tx:
        rows = dict(
            tx.execute(
                schema.orders.select()
                .with_only_columns(schema.orders.c.order_number, schema.orders.c.resolution)
                .where(schema.orders.c.order_number.in_(["C-1", "C-2"]))
            ).all()
        )
    assert rows == {"C-1": "duplicate", "C-2": "add"}
    refused = console.post(
        "/admin/order/resolve",
        data={"company": COMPANY, "number": "C-3", "resolution": "add", "csrf_token": csrf},
    )
    assert refused.status_code == 409
    assert "not in a RefNumber conflict" in _text(refused)


def test_unpost_asks_the_next_run_to_undo_a_synced_order(
    console: Client, store: Store, settings: Settings
) -> None:
    order_service.enqueue(store, COMPANY, [make_order_json(OrderNumber="U-1")])
    run_once(RunEngine(store, settings), quickbooks(), WC_USER, WC_PASSWORD)
    csrf = logged_in(console)
    page = _text(console.get(f"/admin/order?company={COMPANY}&number=U-1"))
    assert "synced" in page and "<pre>" in console.get(
        f"/admin/order?company={COMPANY}&number=U-1"
    ).get_data(as_text=True)
    assert "InvoiceAdd" in page or "SalesReceiptAdd" in page  # the qbXML sent for it
    answer = console.post(
        "/admin/order/unpost", data={"company": COMPANY, "number": "U-1", "csrf_token": csrf}
    )
    assert answer.status_code == 200 and "to be unposted by the next" in _text(answer)
    with store.transaction() as tx:
        assert store.posting.order_by_number(tx, 1, "U-1").unpost  # type: ignore[union-attr]
    cancelled = console.post(
        "/admin/order/unpost",
        data={"company": COMPANY, "number": "U-1", "cancel": "1", "csrf_token": csrf},
    )
    assert cancelled.status_code == 200 and "kept" in _text(cancelled)


def test_the_runs_page_lists_runs_with_a_chart(
    console: Client, store: Store, settings: Settings
) -> None:
    engine = RunEngine(store, settings)
    for batch in range(3):
        order_service.enqueue(
            store,
            COMPANY,
            [make_order_json(OrderNumber=f"Q-{batch}-{i}") for i in range(batch + 1)],
        )
        run_once(engine, quickbooks(), WC_USER, WC_PASSWORD)
    logged_in(console)
    page = console.get(f"/admin/runs?company={COMPANY}").get_data(as_text=True)
    assert page.count('<rect class="orders"') == 3 and page.count('<rect class="seconds"') == 3
    assert re.findall(r"run \d+: (\d+) orders", page) == ["1", "2", "3"]  # oldest first


def test_channels_show_the_last_pull_and_pull_now_makes_it_due(
    console: Client, store: Store
) -> None:
    now = utcnow()
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, COMPANY).id
        channel = channel_store.add(
            tx,
            company_id=company_id,
            name="shop-1",
            kind=ChannelKind.CUSTOM_STORE,
            url="https://shop.example.com/api",
            username="bridge",
            sealed_secret="sealed",
            every_minutes=60,
            window=Window(now - timedelta(hours=1), now),
            order_statuses=(),
            store_names=(),
            now=now,
        )
        tx.execute(
            update(schema.tasks)
            .where(schema.tasks.c.channel_id == channel.id)
            .values(due_at=now + timedelta(hours=1), requested_at=None)
        )
    csrf = logged_in(console)
    page = _text(console.get(f"/admin/channels?company={COMPANY}"))
    assert "shop-1" in page and "none yet" in page and "Pull now" in page
    answer = console.post(
        "/admin/channels/pull", data={"company": COMPANY, "channel": "shop-1", "csrf_token": csrf}
    )
    assert answer.status_code == 200 and "due now" in _text(answer)
    with store.transaction() as tx:
        requested = tx.execute(
            schema.tasks.select()
            .with_only_columns(schema.tasks.c.requested_at)
            .where(schema.tasks.c.channel_id == channel.id)
            .where(schema.tasks.c.kind == TaskKind.PULL.value)
        ).scalar_one()
    assert requested is not None


def test_inventory_is_searched_by_sku(console: Client, store: Store) -> None:
    with store.transaction() as tx:
        inventory_store.upsert(
            tx,
            1,
            [
                StockLevel(f"{p}-{i}", Decimal(i), None, None)
                for p in ("WID", "GAD")
                for i in range(3)
            ],
            utcnow(),
        )
    logged_in(console)
    page = _text(console.get(f"/admin/inventory?company={COMPANY}&q=GAD"))
    assert re.findall(r"<td>((?:GAD|WID)-\d)</td>", page) == ["GAD-0", "GAD-1", "GAD-2"]


def test_settings_and_mappings_are_edited_with_validation(console: Client, store: Store) -> None:
    csrf = logged_in(console)
    page = _text(console.get(f"/admin/settings?company={COMPANY}"))
    assert 'name="key" value="batch_max"' in page
    ok = console.post(
        "/admin/settings",
        data={"company": COMPANY, "key": "batch_max", "value": "120", "csrf_token": csrf},
    )
    assert ok.status_code == 200
    assert company_service.company(store, COMPANY).settings.batch_max == 120
    bad = console.post(
        "/admin/settings",
        data={"company": COMPANY, "key": "batch_max", "value": "lots", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "batch_max" in _text(bad)
    assert company_service.company(store, COMPANY).settings.batch_max == 120

    mapped = console.post(
        "/admin/mappings",
        data={
            "company": COMPANY, "kind": "sku", "source": "shop-sku", "target": "QB Item",
            "csrf_token": csrf,
        },
    )  # fmt: skip
    assert mapped.status_code == 200
    rules = posting_service.list_mappings(store, COMPANY)
    assert [(r.kind.value, r.source, r.target) for r in rules] == [("sku", "shop-sku", "QB Item")]
    refused = console.post(
        "/admin/mappings",
        data={"company": COMPANY, "kind": "txn-type", "source": "Shopify", "target": "cheque",
              "csrf_token": csrf},
    )  # fmt: skip
    assert refused.status_code == 400 and "txn-type mapping names" in _text(refused)
    removed = console.post(
        "/admin/mappings/remove",
        data={"company": COMPANY, "kind": "sku", "source": "shop-sku", "csrf_token": csrf},
    )
    assert removed.status_code == 200
    assert posting_service.list_mappings(store, COMPANY) == []


def test_the_qwc_download_is_what_the_command_writes(console: Client, store: Store) -> None:
    logged_in(console)
    url = "https://bridge.example.com/qbwc"
    answer = console.get(f"/admin/qwc?company={COMPANY}&url={url}&every=30")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["Content-Disposition"]
    company = company_service.company(store, COMPANY)
    assert answer.get_data() == qwc.qwc_document(company, url, run_every_minutes=30)
    insecure = console.get(f"/admin/qwc?company={COMPANY}&url=http://bridge.example.com/qbwc")
    assert insecure.status_code == 400 and "plain http" in _text(insecure)


@pytest.mark.commits("the command line reaches the database on a connection of its own")
def test_admin_user_commands(
    settings: Settings, store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    import io

    monkeypatch.setenv("QBWC_BRIDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli.main(["admin-user", "add", "alice", "--password-stdin"]) == 0
    assert cli.main(["admin-user", "list", "--json"]) == 0
    assert '"name": "alice"' in capsys.readouterr().out
    client = Client(make_wsgi_app(settings, store))
    assert login(client, "alice", "a-long-password").status_code == 303
    assert cli.main(["admin-user", "remove", "alice"]) == 0
    assert client.get("/admin/").status_code == 302  # its session ended with it
    assert cli.main(["admin-user", "remove", "alice"]) != 0
