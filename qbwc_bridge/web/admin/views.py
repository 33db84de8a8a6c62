"""The console's routes: login and logout, the pages, and their buttons.

A session is a row of admin_sessions named by a random token in an HttpOnly, SameSite=Lax
cookie (Secure on HTTPS, and whenever the host is not localhost); every POST form carries
the session's CSRF token (the login form a token of its own cookie), and a POST without
it is refused with 400. Logins go through the same throttle as every other login
(engine/logins.py). Each button calls the service the matching command calls, and each
action is logged with the admin's name.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from qbwc_bridge import qwc
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.company import SETTING_MEANINGS, CompanySettings
from qbwc_bridge.domain.orders import REFNUMBER_CONFLICT, OrderStatus, Resolution
from qbwc_bridge.domain.posting import MappingKind
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import admin_users as admin_service
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import console as console_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import posting as posting_service
from qbwc_bridge.services.companies import InvalidCredentials, LoginLocked
from qbwc_bridge.store import Store
from qbwc_bridge.store.admin_users import AdminSession
from qbwc_bridge.web.admin.chart import Bar, runs_chart

log = logging.getLogger("qbwc_bridge.web.admin")

SESSION_COOKIE = "qbwc_admin"
LOGIN_CSRF_COOKIE = "qbwc_admin_login"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The largest form the console accepts (a mapping, a setting: a few hundred bytes).
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Notice:
    """What a button did, shown above the page: ok, or the refusal's actionable text."""

    ok: bool
    text: str


class Refused(BridgeError):
    """A request the console refuses (answered with its status and message)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _secure() -> bool:
    if request.scheme == "https":
        return True
    host = urlsplit(f"//{request.host}").hostname or ""
    return host not in LOCAL_HOSTS


def _cookie(response: BaseResponse, name: str, value: str, max_age: int, path: str) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=_secure(), httponly=True, samesite="Lax"
    )


def _same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def _form(name: str, limit: int = 500) -> str:
    return str(request.form.get(name, ""))[:limit]


def _arg(name: str, limit: int = 200) -> str:
    return str(request.args.get(name, ""))[:limit]


def create_app(store: Store, settings: Settings) -> Flask:
    """The console over ``store``, its paths under /admin."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    app.jinja_env.globals["statuses"] = [status.value for status in OrderStatus]
    bp = Blueprint(
        "admin",
        __name__,
        url_prefix="/admin",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    open_endpoints = {"admin.login", "admin.static"}

    def who() -> AdminSession:
        found: AdminSession = g.admin
        return found

    def acted(action: str, **details: object) -> None:
        shown = " ".join(f"{key}={value!r}" for key, value in details.items())
        log.info("admin=%r action=%s %s", who().user.name, action, shown)

    @bp.before_request
    def authenticate() -> BaseResponse | None:
        if request.endpoint in open_endpoints:
            return None
        token = request.cookies.get(SESSION_COOKIE, "")
        found = admin_service.session(store, token) if token else None
        if found is None:
            if request.method == "POST":
                raise Refused(403, "Your session has ended: log in again")
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        if request.method == "POST" and not _same(request.form.get("csrf_token"), found.csrf_token):
            log.warning("admin=%r refused a form without its CSRF token", found.user.name)
            raise Refused(400, "The form lacks its security token: reload the page and try again")
        g.admin = found
        return None

    @bp.after_request
    def no_store(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        return response

    def page(template: str, code: int = 200, **context: Any) -> tuple[str, int]:
        admin = getattr(g, "admin", None)
        return (
            render_template(
                template,
                admin=admin,
                csrf_token=admin.csrf_token if admin else "",
                **context,
            ),
            code,
        )

    # --- login and logout ---------------------------------------------------------------

    def login_page(message: str = "", status: int = 200) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        body, code = page(
            "login.html", status, login_token=token, message=message, next=_safe_next()
        )
        response = Response(body, code, content_type="text/html; charset=utf-8")
        _cookie(response, LOGIN_CSRF_COOKIE, token, 3600, "/admin")
        return response

    def _safe_next() -> str:
        wanted = str(request.values.get("next", ""))[:500]
        if wanted.startswith("/admin") and not wanted.startswith("//"):
            return wanted
        return url_for("admin.companies")

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse:
        if request.method == "GET":
            return login_page()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not _same(request.form.get("csrf_token"), expected):
            log.warning("admin login refused: the form lacks its CSRF token")
            raise Refused(400, "The form lacks its security token: reload the page and try again")
        name, password = _form("username", 100), _form("password", 1000)
        address = request.remote_addr or ""
        try:
            new = admin_service.login(store, settings, name, password, address)
        except LoginLocked as locked:
            return login_page(locked.message, 429)
        except InvalidCredentials:
            return login_page("Wrong username or password", 401)
        log.info("admin=%r action=login address=%s", new.user.name, address)
        response = redirect(_safe_next(), 303)
        _cookie(response, SESSION_COOKIE, new.token, new.max_age, "/admin")
        response.delete_cookie(
            LOGIN_CSRF_COOKIE, path="/admin", secure=_secure(), httponly=True, samesite="Lax"
        )
        return response

    @bp.post("/logout")
    def logout() -> BaseResponse:
        admin_service.logout(store, request.cookies.get(SESSION_COOKIE, ""))
        acted("logout")
        response = redirect(url_for("admin.login"), 303)
        response.delete_cookie(
            SESSION_COOKIE, path="/admin", secure=_secure(), httponly=True, samesite="Lax"
        )
        return response

    # --- pages ----------------------------------------------------------------------------

    @bp.get("/")
    def companies() -> tuple[str, int]:
        return page("companies.html", glances=console_service.glance(store))

    def company_arg() -> str:
        name = str(request.values.get("company", ""))[:100]
        if not name:
            raise Refused(400, "Name the company (?company=NAME)")
        return name

    @bp.get("/orders")
    def orders() -> tuple[str, int]:
        company, counts, found = console_service.orders(
            store,
            company_arg(),
            status=_arg("status", 20),
            search=_arg("q", 100),
            before=_arg("before", 20),
        )
        return page(
            "orders.html",
            company=company,
            counts=counts,
            orders=found,
            status=_arg("status", 20),
            q=_arg("q", 100),
            before=_arg("before", 20),
        )

    def order_page(name: str, number: str, notice: Notice | None = None) -> tuple[str, int]:
        detail = console_service.order(store, name, number)
        status = 200 if notice is None or notice.ok else 409
        return page(
            "order.html",
            status,
            company=detail.company,
            detail=detail,
            notice=notice,
            refnumber_conflict=REFNUMBER_CONFLICT,  # only such an error has the resolve form
        )

    @bp.get("/order")
    def order() -> tuple[str, int]:
        return order_page(company_arg(), _arg("number", 100))

    @bp.post("/order/retry")
    def retry() -> tuple[str, int]:
        name, number = company_arg(), _form("number", 100)
        report = order_service.retry_orders(store, name, [number])
        acted("retry", company=name, order=number, retried=bool(report.retried))
        if report.retried:
            notice = Notice(True, f"Order {number} is back in the queue for the next run.")
        else:
            notice = Notice(False, f"Not retried: {report.refused.get(number, '')}")
        return order_page(name, number, notice)

    @bp.post("/order/resolve")
    def resolve() -> tuple[str, int]:
        name, number = company_arg(), _form("number", 100)
        choice = _form("resolution", 20)
        if choice not in ("duplicate", "add"):
            raise Refused(400, "Choose --as-duplicate or --add-anyway")
        resolution = Resolution.DUPLICATE if choice == "duplicate" else Resolution.ADD
        acted("resolve", company=name, order=number, resolution=choice)
        try:
            order_service.resolve(store, name, number, resolution)
        except BridgeError as error:
            return order_page(name, number, Notice(False, error.message))
        if resolution is Resolution.DUPLICATE:
            text = (
                f"Order {number} will be linked to the transaction QuickBooks has with its "
                "RefNumber at the next run (and its payments checked against it)."
            )
        else:
            text = f"Order {number} will be added at the next run."
        return order_page(name, number, Notice(True, text))

    @bp.post("/order/unpost")
    def unpost() -> tuple[str, int]:
        name, number = company_arg(), _form("number", 100)
        cancel = _form("cancel", 5) == "1"
        acted("cancel-unpost" if cancel else "unpost", company=name, order=number)
        if cancel:
            report = posting_service.cancel_unpost(store, name, [number])
            done = "kept (synced again)"
        else:
            report = posting_service.unpost(store, name, [number])
            done = "to be unposted by the next Web Connector run"
        if report.queued:
            notice = Notice(True, f"Order {number} {done}.")
        else:
            notice = Notice(False, f"Not done: {report.refused.get(number, '')}")
        return order_page(name, number, notice)

    @bp.get("/runs")
    def runs() -> tuple[str, int]:
        company, found = console_service.runs(store, company_arg(), before=_arg("before", 20))
        bars = [Bar(str(run.id), run.orders, run.seconds) for run in reversed(found.rows)]
        return page("runs.html", company=company, runs=found, chart=runs_chart(bars))

    def channels_page(name: str, notice: Notice | None = None) -> tuple[str, int]:
        company, shown = console_service.channels(store, name)
        return page("channels.html", company=company, channels=shown, notice=notice)

    @bp.get("/channels")
    def channels() -> tuple[str, int]:
        return channels_page(company_arg())

    @bp.post("/channels/pull")
    def pull_now() -> tuple[str, int]:
        name, channel = company_arg(), _form("channel", 100)
        found = channel_service.channel(store, channel)
        if found.company != name:
            raise Refused(404, f"Company '{name}' has no channel {channel!r}")
        channel_service.request_pull(store, channel)
        acted("pull-now", company=name, channel=channel)
        return channels_page(
            name, Notice(True, f"The pull of {channel} is due now: the worker takes it next.")
        )

    @bp.get("/inventory")
    def inventory() -> tuple[str, int]:
        company, found = console_service.stock(
            store, company_arg(), search=_arg("q", 200), after=_arg("after", 200)
        )
        return page("inventory.html", company=company, rows=found, q=_arg("q", 200))

    def settings_page(
        name: str, notice: Notice | None = None, status: int = 200
    ) -> tuple[str, int]:
        shown = company_service.show_company(store, name)
        return page(
            "settings.html",
            status,
            company=company_service.company(store, name),
            shown=shown,
            meanings=SETTING_MEANINGS,
            mappings=posting_service.list_mappings(store, name),
            kinds=[kind.value for kind in MappingKind],
            notice=notice,
            qwc_url=request.url_root.rstrip("/") + "/qbwc",
        )

    @bp.get("/settings")
    def company_settings() -> tuple[str, int]:
        return settings_page(company_arg())

    @bp.post("/settings")
    def set_setting() -> tuple[str, int]:
        name, key, value = company_arg(), _form("key", 60), _form("value", 1000)
        if key not in CompanySettings.names() and key != "password":
            raise Refused(400, f"Unknown setting {key!r}")
        acted("company-set", company=name, key=key)
        try:
            company_service.set_company_setting(store, name, key, value)
        except BridgeError as error:
            return settings_page(name, Notice(False, f"{key}: {error.message}"), 400)
        shown = "(changed)" if key == "password" else value
        return settings_page(name, Notice(True, f"{key} = {shown}"))

    @bp.post("/mappings")
    def set_mapping() -> tuple[str, int]:
        name = company_arg()
        kind, source, target = _form("kind", 40), _form("source", 300), _form("target", 300)
        acted("map-set", company=name, kind=kind, source=source, target=target)
        try:
            rule = posting_service.set_mapping(store, name, kind, source, target)
        except BridgeError as error:
            return settings_page(name, Notice(False, error.message), 400)
        text = (
            f"{rule.kind.value} {rule.source!r} → {rule.target!r}: applies to every request "
            "built from now on (retry the orders it fixes)."
        )
        return settings_page(name, Notice(True, text))

    @bp.post("/mappings/remove")
    def remove_mapping() -> tuple[str, int]:
        name, kind, source = company_arg(), _form("kind", 40), _form("source", 300)
        acted("map-remove", company=name, kind=kind, source=source)
        try:
            posting_service.remove_mapping(store, name, kind, source)
        except BridgeError as error:
            return settings_page(name, Notice(False, error.message), 400)
        return settings_page(name, Notice(True, f"Removed the {kind} mapping of {source!r}."))

    @bp.get("/qwc")
    def download_qwc() -> Response:
        name = company_arg()
        url = _arg("url", 500) or request.url_root.rstrip("/") + "/qbwc"
        every = _arg("every", 5) or "15"
        if not every.isdigit() or not 1 <= int(every) <= 1440:
            raise Refused(400, "Run every 1 to 1440 minutes")
        company = company_service.company(store, name)
        document = qwc.qwc_document(company, url, run_every_minutes=int(every))
        acted("qwc", company=name, url=url)
        filename = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in company.name)
        return Response(
            document,
            content_type="application/xml; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename or "company"}.qwc"'},
        )

    app.register_blueprint(bp)

    # --- errors -----------------------------------------------------------------------------

    def error_page(message: str, status: int) -> Response:
        body, code = page("error.html", status, message=message, status=status)
        return Response(body, code, content_type="text/html; charset=utf-8")

    @app.errorhandler(Refused)
    def refused(error: Refused) -> Response:
        return error_page(error.message, error.status)

    @app.errorhandler(BridgeError)
    def failed(error: BridgeError) -> Response:
        status = 404 if type(error).__name__.startswith("Unknown") else 400
        return error_page(error.message, status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return error_page(error.description or error.name, error.code or 500)

    @app.errorhandler(Exception)
    def failure(error: Exception) -> Response:
        log.exception("console request failed")
        return error_page("The console failed to answer; the service's log says why.", 500)

    return app
