"""Companies, their credentials and settings, and login throttling."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.domain.company import Company, CompanyFile, CompanySettings
from qbwc_bridge.errors import CompanyExists, UnknownCompany
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc, insert_into, utcnow
from qbwc_bridge.store.direct import Direct

t = schema.companies


# What a Company is made of, in from_columns' order.
COMPANY_COLUMNS = (
    "id", "name", "username", "settings", "owner_id", "file_id", "qbxml_version",
    "company_file", "seconds_per_request", "paired_file_id", "paired_company_name",
    "paired_file_path", "paired_at",
)  # fmt: skip


def from_columns(
    id: int,
    name: str,
    username: str,
    settings: dict[str, Any] | None,
    owner_id: str,
    file_id: str,
    qbxml_version: str | None,
    company_file: str | None,
    seconds_per_request: float | None,
    paired_file_id: str | None = None,
    paired_company_name: str | None = None,
    paired_file_path: str | None = None,
    paired_at: datetime | None = None,
) -> Company:
    """The Company of one row's COMPANY_COLUMNS (a run's lease reads them with the run)."""
    return Company(
        id=id,
        name=name,
        username=username,
        settings=CompanySettings.from_dict(dict(settings or {})),
        owner_id=owner_id,
        file_id=file_id,
        qbxml_version=qbxml_version,
        company_file=company_file,
        seconds_per_request=None if seconds_per_request is None else float(seconds_per_request),
        paired_file=None
        if paired_at is None
        else CompanyFile(paired_file_id or "", paired_company_name or "", paired_file_path or ""),
    )


def _to_company(row: Any) -> Company:
    return from_columns(*(row._mapping[name] for name in COMPANY_COLUMNS))


def add(tx: Tx, name: str, username: str, password_hash: str) -> Company:
    try:
        with tx.begin_nested():
            result = tx.execute(
                insert(t).values(
                    name=name,
                    username=username,
                    password_hash=password_hash,
                    settings={},
                    owner_id=f"{{{uuid.uuid4()}}}".upper(),
                    file_id=f"{{{uuid.uuid4()}}}".upper(),
                    inventory_cursor=0,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        raise CompanyExists(
            f"A company named {name!r} or with username {username!r} already exists"
        ) from None
    assert result.inserted_primary_key is not None
    return get(tx, int(result.inserted_primary_key[0]))


_GET = select(t).where(t.c.id == bindparam("b_id"))  # every callback: built once
_SET_SPEED = Direct(
    update(t).where(t.c.id == bindparam("b_id")).values(seconds_per_request=bindparam("b_speed"))
)


def get(tx: Tx, company_id: int) -> Company:
    row = tx.execute(_GET, {"b_id": company_id}).one_or_none()
    if row is None:
        raise UnknownCompany()
    return _to_company(row)


def by_name(tx: Tx, name: str) -> Company:
    row = tx.execute(select(t).where(t.c.name == name)).one_or_none()
    if row is None:
        raise UnknownCompany(
            f"No company named {name!r}: add it with `qbwc-bridge company add {name} --username ...`"
        )
    return _to_company(row)


def credentials(tx: Tx, username: str) -> tuple[Company, str] | None:
    """The company and its password hash for a Web Connector username, if any."""
    row = tx.execute(select(t).where(t.c.username == username)).one_or_none()
    return None if row is None else (_to_company(row), row.password_hash)


def api_key_hash(tx: Tx, company_id: int) -> str | None:
    value = tx.execute(select(t.c.api_key_hash).where(t.c.id == company_id)).scalar_one()
    return str(value) if value else None


def set_api_key_hash(tx: Tx, company_id: int, value: str) -> None:
    tx.execute(update(t).where(t.c.id == company_id).values(api_key_hash=value))


def set_password_hash(tx: Tx, company_id: int, password_hash: str) -> None:
    tx.execute(update(t).where(t.c.id == company_id).values(password_hash=password_hash))


def save_settings(tx: Tx, company_id: int, settings: CompanySettings) -> None:
    tx.execute(update(t).where(t.c.id == company_id).values(settings=settings.as_dict()))


def remember_company_file(tx: Tx, company_id: int, qbxml_version: str, company_file: str) -> None:
    tx.execute(
        update(t)
        .where(t.c.id == company_id)
        .values(qbxml_version=qbxml_version, company_file=company_file)
    )


def pair_file(tx: Tx, company_id: int, file: CompanyFile, now: datetime) -> None:
    """From now on the company's runs work on ``file`` only."""
    tx.execute(
        update(t)
        .where(t.c.id == company_id)
        .values(
            paired_file_id=file.file_id,
            paired_company_name=file.company_name,
            paired_file_path=file.path,
            paired_at=now,
        )
    )


def note_seen_file(tx: Tx, company_id: int, file: CompanyFile) -> None:
    """The file the last run found open (what `company pair --accept-current-file` takes)."""
    tx.execute(
        update(t)
        .where(t.c.id == company_id)
        .values(
            seen_file_id=file.file_id, seen_company_name=file.company_name, company_file=file.path
        )
    )


def seen_file(tx: Tx, company_id: int) -> CompanyFile | None:
    row = tx.execute(
        select(t.c.seen_file_id, t.c.seen_company_name, t.c.company_file).where(
            t.c.id == company_id
        )
    ).one()
    if row.seen_file_id is None and row.seen_company_name is None and not row.company_file:
        return None
    return CompanyFile(row.seen_file_id or "", row.seen_company_name or "", row.company_file or "")


CLIENT_VERSION_KEPT = timedelta(minutes=10)


def remember_client_version(tx: Tx, address: str, version: str, now: datetime) -> None:
    """clientVersion comes before any login: keep it by address for the next authenticate."""
    v = schema.client_versions
    # clientVersion needs no login: keep only the last few minutes' worth of addresses.
    tx.execute(delete(v).where(v.c.seen_at < now - CLIENT_VERSION_KEPT))
    updated = tx.execute(
        update(v).where(v.c.address == address).values(version=version, seen_at=now)
    )
    if updated.rowcount == 0:
        # Two workers may race to the first row: either one is right.
        with contextlib.suppress(IntegrityError), tx.begin_nested():
            tx.execute(insert(v).values(address=address, version=version, seen_at=now))


def take_client_version(tx: Tx, company_id: int, address: str, since: datetime) -> None:
    """Give the company the Web Connector version its client announced lately, if any."""
    v = schema.client_versions
    version = tx.execute(
        select(v.c.version).where(and_(v.c.address == address, v.c.seen_at >= since))
    ).scalar_one_or_none()
    if version is not None:
        tx.execute(update(t).where(t.c.id == company_id).values(web_connector_version=version))


def web_connector_version(tx: Tx, company_id: int) -> str | None:
    value: str | None = tx.execute(
        select(t.c.web_connector_version).where(t.c.id == company_id)
    ).scalar_one()
    return value


def set_seconds_per_request(tx: Tx, company_id: int, value: float) -> None:
    _SET_SPEED.run(tx, [{"b_id": company_id, "b_speed": round(value, 4)}])


def inventory_due_at(tx: Tx, company_id: int) -> datetime | None:
    value: datetime | None = tx.execute(
        select(t.c.inventory_due_at).where(t.c.id == company_id)
    ).scalar_one()
    return as_utc(value)


def set_inventory_due_at(tx: Tx, company_id: int, when: datetime | None) -> None:
    tx.execute(update(t).where(t.c.id == company_id).values(inventory_due_at=when))


def inventory_synced_from(tx: Tx, company_id: int) -> datetime | None:
    value: datetime | None = tx.execute(
        select(t.c.inventory_synced_from).where(t.c.id == company_id)
    ).scalar_one()
    return as_utc(value)


def set_inventory_synced_from(tx: Tx, company_id: int, when: datetime) -> None:
    tx.execute(update(t).where(t.c.id == company_id).values(inventory_synced_from=when))


def list_all(tx: Tx) -> list[Company]:
    return [_to_company(row) for row in tx.execute(select(t).order_by(t.c.name))]


# --- login throttling -------------------------------------------------------------------

lf = schema.login_failures


def locked_until(tx: Tx, key: str, now: datetime) -> datetime | None:
    value = tx.execute(select(lf.c.locked_until).where(lf.c.key == key)).scalar_one_or_none()
    until = as_utc(value)
    return until if until is not None and until > now else None


def count_attempt(
    tx: Tx, key: str, now: datetime, *, window: timedelta
) -> tuple[int, datetime | None]:
    """Count one login attempt for ``key``: (attempts in its window, locked until).

    One statement, atomic on both databases (INSERT ... ON CONFLICT DO UPDATE RETURNING):
    simultaneous attempts each get their own count, and the first attempt of a new key
    cannot collide with another. A count older than ``window``, no longer locked, starts
    again at 1. The caller counts an attempt before it checks the password (so the count
    holds the failures and the checks in progress), and rolls the count back when it
    does not go on to check; refund_attempt gives back the attempt of a login that
    succeeded, lock_if_failed locks the key after one that failed.
    """
    fresh = and_(
        lf.c.first_failure_at < now - window,
        or_(lf.c.locked_until.is_(None), lf.c.locked_until <= now),
    )
    upsert = insert_into(tx, lf).values(key=key, failures=1, first_failure_at=now)
    statement = upsert.on_conflict_do_update(
        index_elements=[lf.c.key],
        set_={
            "failures": case((fresh, 1), else_=lf.c.failures + 1),
            "first_failure_at": case((fresh, now), else_=lf.c.first_failure_at),
            "locked_until": case((fresh, None), else_=lf.c.locked_until),
        },
    ).returning(lf.c.failures, lf.c.locked_until)
    failures, locked = tx.execute(statement).one()
    return int(failures), as_utc(locked)


def lock_if_failed(tx: Tx, key: str, now: datetime, *, limit: int, window: timedelta) -> None:
    """A check counted under ``key`` failed: lock the key until ``now + window`` if its
    count has reached ``limit`` (and it is not locked already)."""
    tx.execute(
        update(lf)
        .where(
            lf.c.key == key,
            lf.c.failures >= limit,
            or_(lf.c.locked_until.is_(None), lf.c.locked_until <= now),
        )
        .values(locked_until=now + window)
    )


def refund_attempt(tx: Tx, key: str) -> None:
    """Give back one counted attempt: its login succeeded."""
    tx.execute(
        update(lf).where(lf.c.key == key, lf.c.failures > 0).values(failures=lf.c.failures - 1)
    )


def clear_failures(tx: Tx, key: str) -> None:
    tx.execute(delete(lf).where(lf.c.key == key))
