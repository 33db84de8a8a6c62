"""Acceptance fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from soapclient import PASSWORD, Service, intuit_client

from qbwc_bridge.config import Settings
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.store import Store
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer


@pytest.fixture
def service(settings: Settings, store: Store) -> Iterator[Service]:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    with BackgroundServer(make_wsgi_app(settings, store)) as server:
        yield Service(server.url, store, settings, intuit_client(server.url))
