"""The Connex-compatible REST API (docs/http-api.md), a Flask application that web/app.py
hands the Connex paths to, so integrations written for Connex work unchanged.

web/app.py reads each request's body within the service's limits first, as for every
other endpoint; here every answer, errors included, is JSON.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.connex import BadRequest, Fields, boolean, connex_password
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import api_users as api_user_service
from qbwc_bridge.services import connex as connex_service
from qbwc_bridge.services.companies import InvalidCredentials, LoginLocked
from qbwc_bridge.store import Store
from qbwc_bridge.store.api_users import ApiUser

log = logging.getLogger("qbwc_bridge.web.connex")

# The paths of the Connex-compatible API, as Connex spells them; matched in any case.
PATHS = (
    "/api/account/login",
    "/api/ConnexUser/Login",
    "/api/orders/createorders",
    "/api/orders/list",
    "/api/products/list",
    "/api/UserConnections/List",
    "/api/Settings/Update",
    "/api/ScheduledTask/RunNow",
    "/api/DatabaseDownload/List",
)
_BY_FOLDED = {path.casefold(): path for path in PATHS}
BEARER_REALM = 'Bearer realm="qbwc-bridge"'


def route_of(path: str) -> str | None:
    """The Connex path ``path`` names in any letter case (a trailing slash allowed), or None."""
    if len(path) > 40:
        return None
    return _BY_FOLDED.get(path.rstrip("/").casefold())


class Unauthenticated(BridgeError):
    """The request bears no live token (answered 401)."""


def _answer(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload)
    return Response(body, status=status, headers=headers, content_type="application/json")


def _error(message: str, status: int, **extra: Any) -> Response:
    return _answer({"error": message, **extra}, status)


def _body() -> object:
    """The request's JSON (numbers with a fraction as Decimal, as the intake reads them);
    None when there is no body."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequest(f"The body is not valid JSON: {error}") from None


def _locked(locked: LoginLocked) -> Response:
    seconds = max(1, math.ceil((locked.until - locked.now).total_seconds()))
    response = _error(
        locked.message,
        429,
        locked_until=locked.until.isoformat(timespec="seconds"),
        retry_after_seconds=seconds,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def _token(token: api_user_service.Token) -> Response:
    return _answer(
        {"data": {"Result": {"AccessToken": token.value, "ExpiresIn": token.expires_in}}}
    )


def create_app(store: Store, settings: Settings) -> Flask:
    """The Connex-compatible API over ``store``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes

    def user() -> ApiUser:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "Send Authorization: Bearer TOKEN, with a token from POST /api/account/login"
            )
        found = api_user_service.bearer(store, token.strip())
        if found is None:
            raise Unauthenticated("The bearer token is unknown or has expired: log in again")
        return found

    def login(username: object, password: str) -> Response:
        if not isinstance(username, str) or not username:
            raise BadRequest("Send the API user's username")
        address = request.remote_addr or ""
        return _token(api_user_service.login(store, settings, username, password, address))

    @app.post("/api/account/login")
    def account_login() -> Response:
        fields = Fields(_body())
        password = fields.get("password")
        if not isinstance(password, str):
            raise BadRequest("Send the API user's password")
        return login(fields.get("username"), password)

    @app.post("/api/ConnexUser/Login")
    def connex_user_login() -> Response:
        fields = Fields(_body())
        return login(fields.get("Username"), connex_password(fields.get("Password")))

    @app.post("/api/orders/createorders")
    def create_orders() -> Response:
        who = user()
        return _answer(connex_service.create_orders(store, settings, who, _body()))

    def posted(work: Callable[[Store, ApiUser, object], object]) -> Callable[[], Response]:
        def view() -> Response:
            who = user()
            return _answer(work(store, who, _body()))

        return view

    app.add_url_rule(
        "/api/orders/list", "list_orders", posted(connex_service.list_orders), methods=["POST"]
    )
    app.add_url_rule(
        "/api/products/list",
        "list_products",
        posted(connex_service.list_products),
        methods=["POST"],
    )
    app.add_url_rule(
        "/api/Settings/Update",
        "update_settings",
        posted(connex_service.update_settings),
        methods=["POST"],
    )
    app.add_url_rule(
        "/api/ScheduledTask/RunNow", "run_now", posted(connex_service.run_now), methods=["POST"]
    )

    @app.post("/api/UserConnections/List")
    def user_connections() -> Response:
        return _answer(connex_service.connections(store, user()))

    @app.get("/api/DatabaseDownload/List")
    def database_download() -> Response:
        who = user()
        query = {key.casefold(): value for key, value in request.args.items()}
        raw = query.get("deleteorders", "false")
        delete = boolean(raw)
        if delete is None:
            raise BadRequest(f"deleteOrders must be true or false, not {raw[:20]!r}")
        return _answer(connex_service.download(store, who, delete))

    @app.errorhandler(BadRequest)
    def bad_request(error: BadRequest) -> Response:
        return _error(error.message, 400)

    @app.errorhandler(connex_service.OrdersRejected)
    def rejected(error: connex_service.OrdersRejected) -> Response:
        return _error(error.message, 400, errors=[p.as_dict() for p in error.problems])

    @app.errorhandler(connex_service.TooManyOrders)
    def too_many(error: connex_service.TooManyOrders) -> Response:
        return _error(error.message, 413)

    @app.errorhandler(Unauthenticated)
    def unauthenticated(error: Unauthenticated) -> Response:
        response = _error(error.message, 401)
        response.headers["WWW-Authenticate"] = BEARER_REALM
        return response

    @app.errorhandler(InvalidCredentials)
    def wrong_credentials(error: InvalidCredentials) -> Response:
        if isinstance(error, LoginLocked):
            return _locked(error)
        return _error("Wrong username or password", 401)

    @app.errorhandler(BridgeError)
    def unavailable(error: BridgeError) -> Response:
        log.warning("Connex API request failed: %s", error.message)
        return _error(error.message, 503)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        message = error.description or error.name
        if error.code == 405:
            message = f"{request.method} is not allowed on {request.path}"
        return _error(message, error.code or 500)

    @app.errorhandler(Exception)
    def failure(error: Exception) -> Response:
        log.exception("Connex API request failed")
        return _error("The bridge failed to answer this request; its log says why", 500)

    return app
