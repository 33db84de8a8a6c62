"""Settings from QBWC_BRIDGE_* environment variables, built once and passed explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from qbwc_bridge.errors import BridgeError

DEFAULT_DATABASE_URL = "sqlite:///qbwc_bridge.db"


class InvalidConfiguration(BridgeError):
    """A QBWC_BRIDGE_* setting is not valid."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Service-wide settings; per-company ones live in the database (`company set`)."""

    database_url: str = DEFAULT_DATABASE_URL
    # A run whose Web Connector is silent this long is abandoned and its orders requeued.
    run_timeout_seconds: int = 300
    # Login throttling: after this many failures for one username from one client address
    # further attempts from there are refused for lockout_seconds; for one username from
    # anywhere, or one address with any username, after ten times as many
    # (engine/logins.py).
    max_failed_logins: int = 5
    lockout_seconds: int = 300
    # Web Connector versions older than this get "W:" (warning); see README.
    # Empty: no warning for any Web Connector (a warning is a dialog on an unattended PC).
    min_web_connector_version: str = ""
    max_request_bytes: int = 20 * 1024 * 1024
    # Under gunicorn, a request body from which nothing arrives this long is answered 408.
    body_timeout_seconds: int = 30
    max_orders_per_api_call: int = 100
    # Keep what every exchange sent and received, as JSON lines, in this folder.
    record_dir: str = ""
    # Proxies whose X-Forwarded-For is believed (comma-separated), so login throttling per
    # client address sees the client, not nginx.
    trusted_proxies: str = "127.0.0.1,::1"
    log_level: str = "INFO"
    # Channel secrets at rest (sealing.py): one Fernet key or several, comma-separated (the
    # first seals); else a key file (default: beside the SQLite database).
    secret_key: str = ""
    secret_key_file: str = ""
    # A worker's hold on a channel's task; renewed while it works, free this long after
    # the worker died.
    task_lease_seconds: int = 60
    # GET /metrics answers only requests bearing this token; without one it is not served
    # (404): its figures name every company.
    metrics_token: str = ""
    # How long a bearer token of the Connex-compatible REST API (its logins) stays valid.
    api_token_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = env.get(f"QBWC_BRIDGE_{spec.name.upper()}")
            if raw is None:
                continue
            if spec.type == "int":
                try:
                    values[spec.name] = int(raw)
                except ValueError:
                    raise InvalidConfiguration(
                        f"QBWC_BRIDGE_{spec.name.upper()} must be a whole number, not {raw!r}"
                    ) from None
            else:
                values[spec.name] = raw
        return cls(**values)  # type: ignore[arg-type]


ENV_VARS = {f"QBWC_BRIDGE_{spec.name.upper()}": spec.name for spec in fields(Settings)}
