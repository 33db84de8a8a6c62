"""Graceful shutdown: a gunicorn worker told to stop finishes the callback it is serving."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from soapclient import intuit_client
from sqlalchemy import create_engine, text
from wcdriver import PASSWORD, company_orders, fresh_postgres, new_quickbooks, seed_company, service


@pytest.mark.postgres
def test_sigterm_lets_the_callback_in_flight_finish(postgres_database: str, tmp_path: Path) -> None:
    store = fresh_postgres(postgres_database)
    seed_company(store, "calm", company_orders("calm", 2))
    store.database.dispose()
    admin = create_engine(postgres_database)
    with service(postgres_database, tmp_path / "service.log") as server:
        soap = intuit_client(server.url)
        ticket, answer = soap.authenticate("calm-user", PASSWORD)
        assert answer in ("", None)
        answers: list[object] = []
        with admin.connect() as blocker:
            # Hold the run's row: the next callback waits for it inside its transaction.
            blocker.execute(text("SELECT id FROM runs WHERE status = 'open' FOR UPDATE")).all()
            caller = threading.Thread(
                target=lambda: answers.append(
                    soap.sendRequestXML(ticket, new_quickbooks().hcp_response(), "", "US", 13, 0)
                )
            )
            caller.start()
            _wait_for_a_lock_wait(admin)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
            time.sleep(0.5)
            assert server.process.poll() is None  # still finishing the callback
            blocker.rollback()  # the callback may go on now
        caller.join(timeout=30)
        assert answers and "InvoiceQueryRq" in str(answers[0])
        assert server.process.wait(timeout=30) == 0
        server.process = None
    admin.dispose()


def _wait_for_a_lock_wait(admin: object) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with admin.connect() as probe:  # type: ignore[attr-defined]
            waiting = probe.execute(
                text(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).first()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the callback never started waiting for the run's row")
