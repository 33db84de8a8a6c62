"""The WSGI application: /qbwc (SOAP), /api/orders, /api/product-updates,
/api/quickbooks-transactions, /healthz, /metrics, the Connex-compatible REST API, and the
admin console (/admin).

Every request body is read here with a size limit; /qbwc is then the SOAP layer's
(soap/endpoint.py), the Connex paths the Flask application's (web/connex.py), the rest the
service layer's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import logging
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from qbwc_bridge import metrics
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.company import Company
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import BridgeError, OrderRejected
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import exports as export_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.soap.endpoint import SoapEndpoint
from qbwc_bridge.store import Store, stats
from qbwc_bridge.web import admin, connex

log = logging.getLogger("qbwc_bridge.web")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class BodyTooLarge(BridgeError):
    """The request body is larger than this service accepts."""


class BadLength(BridgeError):
    """The request needs a valid Content-Length header."""


class BodyTimeout(BridgeError):
    """The client stopped sending the request body."""


# The largest cursor the database holds (a BigInteger).
MAX_CURSOR = 2**63 - 1


def _read_body(environ: Environ, limit: int, timeout_seconds: float = 0) -> bytes:
    """Exactly Content-Length bytes, never more than ``limit``; never wait on an open socket.

    Under gunicorn, a client that sends nothing for ``timeout_seconds`` while its body is
    read gets BodyTimeout: a stalled upload holds a worker thread that long, not forever.
    """
    sock = environ.get("gunicorn.socket")
    if sock is not None and timeout_seconds > 0:
        sock.settimeout(timeout_seconds)
    try:
        return _read_body_within(environ, limit)
    except TimeoutError:
        raise BodyTimeout(
            f"No part of the request body arrived for {timeout_seconds:g} seconds"
        ) from None


def _read_body_within(environ: Environ, limit: int) -> bytes:
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if not declared:
        if not environ.get("wsgi.input_terminated"):
            raise BadLength("Send a Content-Length header")
        body = stream.read(limit + 1)  # the server ends the stream (chunked upload)
    elif not declared.isdigit():
        raise BadLength(f"Content-Length {declared[:20]!r} is not a byte count")
    elif int(declared) > limit:
        raise BodyTooLarge(
            f"The request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    else:
        body = stream.read(int(declared)) if int(declared) else b""
    if len(body) > limit:
        raise BodyTooLarge(f"The request body exceeds the limit of {limit} bytes")
    return bytes(body)


def _json(start_response: StartResponse, status: str, payload: object) -> list[bytes]:
    body = json.dumps(payload, default=_json_default).encode("utf-8")
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def client_address(environ: Environ, trusted_proxies: frozenset[str]) -> str:
    """The client's address: REMOTE_ADDR, or behind trusted proxies the last untrusted hop."""
    address = str(environ.get("REMOTE_ADDR", ""))
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
    if address not in trusted_proxies or not forwarded:
        return address
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if hop not in trusted_proxies:
            return hop[:100]
    return address


class BridgeApp:
    """Routes requests; holds the one engine and store of this process."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store.from_url(settings.database_url)
        self.engine = RunEngine(self.store, settings)
        self.soap = SoapEndpoint(self.engine, settings.max_request_bytes)
        self.connex = connex.create_app(self.store, settings)
        self.admin = admin.create_app(self.store, settings)
        self.trusted_proxies = frozenset(
            address.strip() for address in settings.trusted_proxies.split(",") if address.strip()
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "")
        environ["REMOTE_ADDR"] = client_address(environ, self.trusted_proxies)
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path.rstrip("/") == "/qbwc":
                return self._soap(environ, start_response, method)
            if path == "/healthz":
                return self._health(start_response)
            if path == "/metrics" and method == "GET" and self.settings.metrics_token:
                return self._metrics(environ, start_response)
            if path == "/api/orders" and method == "POST":
                return self._post_orders(environ, start_response)
            if path == "/api/product-updates" and method == "GET":
                return self._product_updates(environ, start_response)
            if path == "/api/quickbooks-transactions" and method == "GET":
                return self._quickbooks_transactions(environ, start_response)
            if path == "/admin" or path.startswith("/admin/"):
                return self._admin(environ, start_response, peer)
            connex_path = connex.route_of(path)
            if connex_path is not None:
                return self._connex(environ, start_response, connex_path, method)
            return _json(
                start_response, "404 Not Found", {"error": f"No route for {method} {path}"}
            )
        except BodyTooLarge as error:
            return _json(start_response, "413 Payload Too Large", {"error": error.message})
        except BodyTimeout as error:
            return _json(start_response, "408 Request Timeout", {"error": error.message})
        except BadLength as error:
            status = "411 Length Required" if "header" in error.message else "400 Bad Request"
            return _json(start_response, status, {"error": error.message})
        except BridgeError as error:
            log.warning("request failed: %s", error.message)
            return _json(start_response, "503 Service Unavailable", {"error": error.message})

    # --- SOAP -----------------------------------------------------------------------

    def _soap(
        self, environ: Environ, start_response: StartResponse, method: str
    ) -> Iterable[bytes]:
        if method == "GET":
            if "wsdl" not in environ.get("QUERY_STRING", "").lower():
                return _json(
                    start_response, "404 Not Found", {"error": "GET /qbwc?wsdl for the WSDL"}
                )
            return self.soap.wsdl(environ, start_response)
        if method != "POST":
            return _json(
                start_response, "405 Method Not Allowed", {"error": "POST a SOAP envelope"}
            )
        body = _read_body(
            environ, self.settings.max_request_bytes, self.settings.body_timeout_seconds
        )
        return self.soap.call(environ, start_response, body)

    # --- JSON API -------------------------------------------------------------------

    def _login(self, environ: Environ) -> Company | company_service.LoginLocked | None:
        """The company of the request's HTTP Basic credentials; LoginLocked while the login
        throttle refuses them unchecked; None for anything else."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, secret = (
                base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        if "\x00" in username or "\x00" in secret or len(username) > 100:
            return None
        try:
            return company_service.api_login(
                self.store, self.settings, username, secret, str(environ.get("REMOTE_ADDR", ""))
            )
        except company_service.LoginLocked as locked:
            return locked
        except company_service.InvalidCredentials:
            return None

    def _refused(
        self, start_response: StartResponse, login: company_service.LoginLocked | None
    ) -> list[bytes]:
        if login is None:
            return self._unauthorized(start_response)
        seconds = max(1, math.ceil((login.until - login.now).total_seconds()))
        body = json.dumps(
            {
                "error": login.message,
                "locked_until": login.until.isoformat(timespec="seconds"),
                "retry_after_seconds": seconds,
            }
        ).encode()
        start_response(
            "429 Too Many Requests",
            [
                ("Content-Type", "application/json"),
                ("Retry-After", str(seconds)),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _unauthorized(self, start_response: StartResponse) -> list[bytes]:
        body = json.dumps(
            {
                "error": "Authentication required: HTTP Basic with the company's "
                "Web Connector username and password (or API key)"
            }
        ).encode()
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", 'Basic realm="qbwc-bridge"'),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _post_orders(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        company = self._login(environ)
        if not isinstance(company, Company):
            return self._refused(start_response, company)
        content_type = environ.get("CONTENT_TYPE", "")
        if "json" not in content_type.lower():
            return _json(
                start_response,
                "415 Unsupported Media Type",
                {"error": "Send the orders as application/json"},
            )
        body = _read_body(
            environ, self.settings.max_request_bytes, self.settings.body_timeout_seconds
        )
        try:
            items = json.loads(body.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            return _json(
                start_response, "400 Bad Request", {"error": f"The body is not valid JSON: {error}"}
            )
        if not isinstance(items, list):
            return _json(
                start_response, "400 Bad Request", {"error": "Send a JSON array of orders"}
            )
        if len(items) > self.settings.max_orders_per_api_call:
            return _json(
                start_response,
                "413 Payload Too Large",
                {
                    "error": f"At most {self.settings.max_orders_per_api_call} orders per call; "
                    f"this one has {len(items)}"
                },
            )
        skip = parse_qs(environ.get("QUERY_STRING", "")).get("skip_invalid", ["false"])[-1]
        if skip.lower() not in ("true", "false"):
            return _json(
                start_response, "400 Bad Request", {"error": "skip_invalid must be true or false"}
            )
        try:
            report = order_service.enqueue(
                self.store, company.name, items, skip_invalid=skip.lower() == "true"
            )
        except order_service.NothingEnqueued as error:
            hint = "Fix the orders, or send them with ?skip_invalid=true to queue the valid ones."
            return _json(
                start_response,
                "422 Unprocessable Entity",
                {
                    "error": f"{error.message} {hint}",
                    "errors": [p.as_dict() for p in error.problems],
                },
            )
        except OrderRejected as error:
            return _json(
                start_response,
                "422 Unprocessable Entity",
                {"error": error.message, "errors": [error.as_dict()]},
            )
        return _json(start_response, "200 OK", report.as_dict())

    def _product_updates(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        company = self._login(environ)
        if not isinstance(company, Company):
            return self._refused(start_response, company)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            since = int(query.get("since", ["0"])[0])
            limit = min(int(query.get("limit", ["1000"])[0]), 10000)
        except ValueError:
            return _json(
                start_response,
                "400 Bad Request",
                {"error": "since and limit must be whole numbers"},
            )
        if not 0 <= since <= MAX_CURSOR:
            return _json(
                start_response,
                "400 Bad Request",
                {"error": f"since must be a cursor between 0 and {MAX_CURSOR}"},
            )
        return _json(
            start_response,
            "200 OK",
            inventory_service.product_updates_for(self.store, company, since, max(limit, 1)),
        )

    def _quickbooks_transactions(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The export's rows after ``since`` (docs/export.md), as /api/product-updates serves
        inventory: the same login, the same ``since`` and ``limit``."""
        company = self._login(environ)
        if not isinstance(company, Company):
            return self._refused(start_response, company)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            since = int(query.get("since", ["0"])[0])
            limit = min(int(query.get("limit", ["1000"])[0]), 10000)
        except ValueError:
            return _json(
                start_response,
                "400 Bad Request",
                {"error": "since and limit must be whole numbers"},
            )
        if not 0 <= since <= MAX_CURSOR:
            return _json(
                start_response,
                "400 Bad Request",
                {"error": f"since must be a cursor between 0 and {MAX_CURSOR}"},
            )
        page = export_service.quickbooks_transactions_for(self.store, company, since, max(limit, 1))
        return _json(start_response, "200 OK", page)

    def _connex(
        self, environ: Environ, start_response: StartResponse, path: str, method: str
    ) -> Iterable[bytes]:
        """The Connex-compatible API (web/connex.py), its body read here like any other."""
        body = b""
        if method not in ("GET", "HEAD") or environ.get("CONTENT_LENGTH"):
            body = _read_body(
                environ, self.settings.max_request_bytes, self.settings.body_timeout_seconds
            )
        environ.update(
            {"PATH_INFO": path, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        )
        return self.connex(environ, start_response)

    def _admin(self, environ: Environ, start_response: StartResponse, peer: str) -> Iterable[bytes]:
        """The admin console (web/admin/): HTTPS as a trusted proxy reports it."""
        if peer in self.trusted_proxies:
            proto = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).split(",")[0].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        if environ.get("PATH_INFO") == "/admin":
            environ["PATH_INFO"] = "/admin/"
        return self.admin(environ, start_response)

    def _metrics(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """Served only with QBWC_BRIDGE_METRICS_TOKEN set, to its bearer: the figures name
        every company."""
        scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        expected = self.settings.metrics_token.encode("utf-8", "surrogateescape")
        given = token.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
            body = json.dumps({"error": "GET /metrics needs the metrics bearer token"}).encode()
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate", 'Bearer realm="qbwc-bridge metrics"'),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        with self.store.transaction() as tx:
            orders = stats.orders_by_status(tx)
            runs = stats.runs_by_status(tx)
            errors = stats.errors_by_code(tx)
        lines = [
            "# HELP qbwc_bridge_orders Orders by company and status.",
            "# TYPE qbwc_bridge_orders gauge",
        ]
        lines += [
            f'qbwc_bridge_orders{{company="{metrics.escape_label(n)}",status="{s}"}} {v}'
            for n, s, v in orders
        ]
        lines += [
            "# HELP qbwc_bridge_runs Web Connector runs by status.",
            "# TYPE qbwc_bridge_runs gauge",
        ]
        lines += [f'qbwc_bridge_runs{{status="{s}"}} {v}' for s, v in runs]
        lines += [
            "# HELP qbwc_bridge_quickbooks_errors Orders in error by QuickBooks status code.",
            "# TYPE qbwc_bridge_quickbooks_errors gauge",
        ]
        lines += [f'qbwc_bridge_quickbooks_errors{{code="{code}"}} {v}' for code, v in errors]
        lines += metrics.render_callbacks()
        body = ("\n".join(lines) + "\n").encode("utf-8")
        start_response(
            "200 OK",
            [("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _health(self, start_response: StartResponse) -> list[bytes]:
        if self.store.database.ping():
            return _json(start_response, "200 OK", {"status": "ok"})
        return _json(start_response, "503 Service Unavailable", {"status": "database unreachable"})


def make_wsgi_app(settings: Settings | None = None, store: Store | None = None) -> BridgeApp:
    return BridgeApp(settings or Settings.from_env(), store)
