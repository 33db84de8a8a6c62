"""Signed webhook deliveries: ``POST URL`` with the event's JSON and its HMAC-SHA256.

The receiver recomputes ``sha256=`` + hex(HMAC-SHA256(secret, raw body)) and compares it
with X-Qbwc-Bridge-Signature (docs/channels.md shows it in a few lines).
"""

from __future__ import annotations

import hashlib
import hmac

from qbwc_bridge.channels.http import Closing, HttpClient, Sent, check_url, redact

SIGNATURE_HEADER = "X-Qbwc-Bridge-Signature"
EVENT_HEADER = "X-Qbwc-Bridge-Event"
DELIVERY_HEADER = "X-Qbwc-Bridge-Delivery"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookClient(Closing):
    """Delivers to one receiver; one connection pool, closed with ``close()`` or ``with``."""

    def __init__(
        self, url: str, secret: str, *, connect_timeout: float = 10.0, read_timeout: float = 60.0
    ) -> None:
        self._url = check_url(url)
        self.url = redact(self._url)
        self._secret = secret
        self._http = HttpClient(connect_timeout=connect_timeout, read_timeout=read_timeout)

    def __repr__(self) -> str:
        return f"WebhookClient({self.url!r})"

    def deliver(self, event: str, delivery_id: str, body: bytes) -> Sent:
        headers = {
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        return self._http.send_json(self._url, body, headers=headers)

    def close(self) -> None:
        self._http.close()
