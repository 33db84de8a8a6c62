"""The admin console in a real browser (the distribution's Chromium, headless, driven by
Selenium), against the service on loopback: log in, walk every page, fix an errored order
with a mapping and retry it, see it synced after a simulated Web Connector run, download
the .qwc, and see a forged form refused. A screenshot of each page is saved under
test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from enginedriver import quickbooks
from factories import make_line, make_order_json

from qbwc_bridge import qwc
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.services import admin_users as admin_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN, ADMIN_PASSWORD = "operator", "console-secret-1"
COMPANY, WC_USER, WC_PASSWORD = "acme", "acme-wc", "acme-password-1"
UNKNOWN_SKU = "SHOP-ONLY-SKU"

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install 'qbwc-bridge[test]')")
    if not missing:
        return
    reason = (
        f"browser tests need {', '.join(missing)}: install the Debian packages chromium and "
        "chromium-driver (.ci/run does)"
    )
    if os.environ.get("QBWC_BRIDGE_TEST_NO_SKIPS") == "1":
        pytest.fail(f"{reason}, but every test must run here")
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(tmp_path / "downloads"),
            "download.prompt_for_download": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def bridge(sqlite_url: str) -> Iterator[tuple[str, Store]]:
    store = Store.from_url(sqlite_url)
    company_service.add_company(store, COMPANY, WC_USER, WC_PASSWORD)
    admin_service.add(store, ADMIN, ADMIN_PASSWORD)
    with store.transaction() as tx:
        inventory_store.upsert(
            tx, 1, [StockLevel(f"WIDGET-{i}", Decimal(i), None, None) for i in range(5)], utcnow()
        )
    try:
        with BackgroundServer(make_wsgi_app(Settings(database_url=sqlite_url), store)) as server:
            yield server.base_url, store
    finally:
        store.database.dispose()


def _run(base: str, fake: FakeQuickBooks) -> None:
    report = WebConnector(f"{base}/qbwc", WC_USER, WC_PASSWORD, fake, timeout=30).run()
    assert report.outcome == "done", report


def _status(store: Store, number: str) -> str:
    orders = order_service.status(store, COMPANY)["orders"]
    return str(next(o["status"] for o in orders if o["order_number"] == number))


def test_an_operator_fixes_an_errored_order_in_the_console(
    browser: object, bridge: tuple[str, Store], tmp_path: Path
) -> None:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.expected_conditions import (
        element_to_be_clickable,
        staleness_of,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    base, store = bridge
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def text() -> str:
        """The page's text; "" while a new page replaces the old one (nothing to read yet)."""
        try:
            return str(driver.find_element(By.TAG_NAME, "body").text)
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def loaded() -> None:
        WebDriverWait(driver, 15).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def click(by: str, value: str) -> None:
        """Click what ``by`` and ``value`` find on the loaded page, and wait for the next page
        to replace it. The element is looked up only once the page has loaded: one found
        while the browser still swaps documents belongs to neither."""
        loaded()
        page = driver.find_element(By.TAG_NAME, "html")
        WebDriverWait(driver, 15).until(element_to_be_clickable((by, value))).click()

        def replaced(_: object) -> bool:
            try:
                return bool(staleness_of(page)(driver))
            except WebDriverException as error:
                # Chromium's answer when the old page's node is asked about mid-swap.
                if "does not belong to the document" in str(error):
                    return True
                raise

        WebDriverWait(driver, 15).until(replaced)
        loaded()

    def submit(form_css: str, button_css: str = "button[type=submit]") -> None:
        click(By.CSS_SELECTOR, f"{form_css} {button_css}")

    def link(name: str) -> None:
        click(By.LINK_TEXT, name)

    order_service.enqueue(
        store,
        COMPANY,
        [
            make_order_json(OrderNumber="B-1"),
            make_order_json(OrderNumber="B-2", orderDetails=[make_line(sku=UNKNOWN_SKU)]),
        ],
    )
    fake = quickbooks()
    _run(base, fake)
    assert (_status(store, "B-1"), _status(store, "B-2")) == ("synced", "error")

    # Everything needs a session: a page sends the browser to the login form.
    driver.get(f"{base}/admin/orders?company={COMPANY}")
    assert "/admin/login" in driver.current_url
    shot("login")
    driver.find_element(By.NAME, "username").send_keys(ADMIN)
    driver.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    submit("form.login")
    assert driver.current_url.endswith(f"/admin/orders?company={COMPANY}")
    cookie = driver.get_cookie("qbwc_admin")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    driver.get(f"{base}/admin/")
    shot("companies")
    assert COMPANY in text() and driver.find_elements(By.CSS_SELECTOR, "tr.has-errors")

    link(COMPANY)
    shot("orders")
    assert "B-1" in text() and "B-2" in text()
    click(By.CSS_SELECTOR, "p.counts a[href*='status=error']")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.orders tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["B-2"]

    link("B-2")
    shot("order-error")
    assert UNKNOWN_SKU in text() and "Retry" in text()

    # The mapping that fixes it.
    link("Settings & mappings")
    shot("settings")
    mapping = driver.find_element(By.CSS_SELECTOR, "form.add-mapping")
    mapping.find_element(By.CSS_SELECTOR, "select[name=kind] option[value=sku]").click()
    mapping.find_element(By.NAME, "source").send_keys(UNKNOWN_SKU)
    mapping.find_element(By.NAME, "target").send_keys("WIDGET-RED")
    submit("form.add-mapping")
    assert f"sku '{UNKNOWN_SKU}' → 'WIDGET-RED'" in text()
    assert UNKNOWN_SKU in driver.find_element(By.CSS_SELECTOR, "table.mappings").text

    # Retry, a run, and it is synced.
    driver.get(f"{base}/admin/order?company={COMPANY}&number=B-2")
    click(By.CSS_SELECTOR, "button[value=retry]")
    assert "back in the queue" in text()
    assert _status(store, "B-2") == "pending"
    _run(base, fake)
    driver.refresh()
    assert driver.find_element(By.CSS_SELECTOR, "h1 .badge").text == "synced"
    shot("order-synced")

    link("Runs")
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.orders")) == 2
    shot("runs")
    link("Channels")
    assert "No channels" in text()
    shot("channels")
    link("Inventory")
    assert "WIDGET-3" in text()
    shot("inventory")

    # The .qwc download: the file `qbwc-bridge qwc` writes.
    link("Settings & mappings")
    driver.find_element(By.CSS_SELECTOR, "form.qwc button").click()  # a download: no new page
    downloaded = tmp_path / "downloads" / f"{COMPANY}.qwc"
    deadline = time.monotonic() + 15
    while not downloaded.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    company = company_service.company(store, COMPANY)
    assert downloaded.read_bytes() == qwc.qwc_document(company, f"{base}/qbwc")

    # A form forged without the CSRF token (as another site would post it) is refused.
    driver.get(f"{base}/admin/order?company={COMPANY}&number=B-1")
    driver.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/admin/order/unpost';
        for (const [k, v] of [['company', arguments[0]], ['number', 'B-1']]) {
          const input = document.createElement('input');
          input.name = k; input.value = v; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
        """,
        COMPANY,
    )
    deadline = time.monotonic() + 10
    while "security token" not in text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r"\b400\b", text()) and "security token" in text()
    shot("forged-form-refused")
    assert _status(store, "B-1") == "synced"
    with store.transaction() as tx:
        assert not store.posting.order_by_number(tx, 1, "B-1").unpost  # type: ignore[union-attr]

    # Log out: the session ends, pages need a login again.
    driver.get(f"{base}/admin/")
    click(By.CSS_SELECTOR, "form.logout button")
    driver.get(f"{base}/admin/")
    assert "/admin/login" in driver.current_url
