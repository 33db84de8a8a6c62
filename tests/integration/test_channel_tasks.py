"""Channels' tasks on SQLite and PostgreSQL: leased like runs, never run twice at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from qbwc_bridge import sealing
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.errors import LeaseLost
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.store import Store
from qbwc_bridge.store import channels as channel_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
PULL = TaskKind.PULL
PASSWORD = "store-secret-Zq7#"


def _channel(store: Store, settings: Settings, name: str = "shop") -> int:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    sealer = sealing.Sealer([settings.secret_key])
    with store.transaction() as tx:
        return channel_store.add(
            tx,
            company_id=store.companies.by_name(tx, "acme").id,
            name=name,
            kind=ChannelKind.CUSTOM_STORE,
            url="http://127.0.0.1:9/api",
            username="u",
            sealed_secret=sealer.seal(PASSWORD),
            every_minutes=60,
            window=Window.first(NOW),
            order_statuses=(),
            store_names=(),
            now=NOW,
        ).id


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return Settings(database_url=settings.database_url, secret_key=sealing.new_key())


def test_a_new_channel_is_due_and_one_lease_holds_it(store: Store, keyed: Settings) -> None:
    channel_id = _channel(store, keyed)
    with store.transaction() as tx:
        first = channel_store.claim_task(tx, "w1", NOW, LEASE, channel_id, PULL)
        assert first is not None and (first.channel_id, first.kind) == (channel_id, TaskKind.PULL)
        assert (
            channel_store.claim_task(tx, "w2", NOW + timedelta(seconds=30), LEASE, channel_id, PULL)
            is None
        )
        # The holder died: its lease ends, another worker takes the task...
        second = channel_store.claim_task(
            tx, "w2", NOW + timedelta(seconds=61), LEASE, channel_id, PULL
        )
        assert second is not None and second.token == "w2"
        # ...and the first one's late steps are refused.
        assert not channel_store.finish_task(tx, first, NOW, NOW + timedelta(hours=1))
        with pytest.raises(LeaseLost):
            channel_store.renew_task(tx, first, NOW, LEASE)
        assert channel_store.finish_task(tx, second, NOW, NOW + timedelta(hours=1))
        assert (
            channel_store.claim_task(tx, "w3", NOW + timedelta(minutes=5), LEASE, channel_id, PULL)
            is None
        )


def test_a_login_makes_the_pull_due_even_while_one_runs(store: Store, keyed: Settings) -> None:
    channel_id = _channel(store, keyed)
    with store.transaction() as tx:
        running = channel_store.claim_task(tx, "w1", NOW, LEASE, channel_id, PULL)
        assert running is not None
        company_id = store.companies.by_name(tx, "acme").id
        channel_store.request_company_pulls(tx, company_id, NOW + timedelta(seconds=5))
        assert channel_store.finish_task(tx, running, NOW, NOW + timedelta(hours=1))
        again = channel_store.claim_task(
            tx, "w2", NOW + timedelta(seconds=6), LEASE, channel_id, PULL
        )
        assert again is not None and again.channel_id == channel_id


def test_a_disabled_channel_is_never_taken(store: Store, keyed: Settings) -> None:
    channel_id = _channel(store, keyed)
    with store.transaction() as tx:
        channel_store.update_settings(tx, channel_id, NOW, enabled=False)
        assert channel_store.claim_task(tx, "w1", NOW, LEASE, channel_id, PULL) is None


@pytest.mark.commits("threads race on their own connections")
def test_two_workers_racing_for_one_channel_never_both_get_it(
    store: Store, keyed: Settings
) -> None:
    channel_id = _channel(store, keyed)
    barrier = threading.Barrier(8)
    taken: list[str] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        racing = Store.from_url(keyed.database_url)
        try:
            barrier.wait()
            with racing.transaction() as tx:
                if channel_store.claim_task(tx, name, NOW, LEASE, channel_id, PULL) is not None:
                    taken.append(name)
        except Exception as error:  # a busy SQLite counts as not taking it
            if "busy" not in str(error).lower() and "locked" not in str(error).lower():
                errors.append(error)
        finally:
            racing.database.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(taken) == 1


def test_the_store_password_is_sealed_in_the_database(store: Store, keyed: Settings) -> None:
    _channel(store, keyed)
    with store.transaction() as tx:
        (sealed,) = tx.exec_driver_sql("SELECT sealed_secret FROM channels").scalars().all()
        dump = " ".join(
            str(value)
            for table in ("channels", "tasks", "companies")
            for row in tx.exec_driver_sql(f"SELECT * FROM {table}").all()
            for value in row
        )
    assert PASSWORD not in dump
    assert sealing.Sealer([keyed.secret_key]).open(sealed) == PASSWORD
    with pytest.raises(sealing.SecretUnreadable):
        sealing.Sealer([sealing.new_key()]).open(sealed)


def test_rotating_the_key_reseals_every_secret(store: Store, keyed: Settings) -> None:
    _channel(store, keyed)
    new = sealing.new_key()
    rotating = sealing.Sealer([new, keyed.secret_key])
    with store.transaction() as tx:
        assert channel_store.reseal_all(tx, rotating.reseal) == 1
        (sealed,) = tx.exec_driver_sql("SELECT sealed_secret FROM channels").scalars().all()
    assert sealing.Sealer([new]).open(sealed) == PASSWORD  # the old key is no longer needed
