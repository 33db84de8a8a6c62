"""The REST API's users, their hashed bearer tokens and download cursors, and the channel
each order came in through: what the Connex-compatible API keeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc
from qbwc_bridge.store.direct import in_texts

u, t, c, o = schema.api_users, schema.api_tokens, schema.companies, schema.orders


class ApiUserExists(BridgeError):
    """An API user of that name exists already: API user names are unique across companies."""


class UnknownApiUser(BridgeError):
    """No such API user: `qbwc-bridge api-user list` shows them."""


@dataclass(frozen=True, slots=True)
class ApiUser:
    """A user of the REST API; its name picks its company."""

    id: int
    name: str
    company_id: int
    company: str
    download_cursor: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Whose a live bearer token is."""

    api_user: ApiUser
    expires_at: datetime


_SELECT = select(
    u.c.id, u.c.name, u.c.company_id, c.c.name.label("company"), u.c.download_cursor,
    u.c.created_at,
).join(c, c.c.id == u.c.company_id)  # fmt: skip


def _to_user(row: object) -> ApiUser:
    values = row._mapping  # type: ignore[attr-defined]
    return ApiUser(
        id=int(values["id"]),
        name=str(values["name"]),
        company_id=int(values["company_id"]),
        company=str(values["company"]),
        download_cursor=int(values["download_cursor"]),
        created_at=as_utc(values["created_at"]),
    )


def add(tx: Tx, company_id: int, name: str, password_hash: str, now: datetime) -> ApiUser:
    try:
        with tx.begin_nested():
            result = tx.execute(
                insert(u).values(
                    company_id=company_id,
                    name=name,
                    password_hash=password_hash,
                    download_cursor=0,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ApiUserExists(
            f"An API user named {name!r} exists already (names are unique across companies)"
        ) from None
    assert result.inserted_primary_key is not None
    return get(tx, int(result.inserted_primary_key[0]))


def get(tx: Tx, api_user_id: int) -> ApiUser:
    row = tx.execute(_SELECT.where(u.c.id == api_user_id)).one_or_none()
    if row is None:
        raise UnknownApiUser()
    return _to_user(row)


def by_name(tx: Tx, name: str) -> ApiUser:
    row = tx.execute(_SELECT.where(u.c.name == name)).one_or_none()
    if row is None:
        raise UnknownApiUser(f"No API user named {name!r}: `qbwc-bridge api-user list` shows them")
    return _to_user(row)


def credentials(tx: Tx, name: str) -> tuple[ApiUser, str] | None:
    """The API user of that name and its password hash, if there is one."""
    row = tx.execute(_SELECT.add_columns(u.c.password_hash).where(u.c.name == name)).one_or_none()
    return None if row is None else (_to_user(row), str(row.password_hash))


def set_password_hash(tx: Tx, api_user_id: int, password_hash: str) -> None:
    tx.execute(update(u).where(u.c.id == api_user_id).values(password_hash=password_hash))


def list_users(tx: Tx, company_id: int | None = None) -> list[ApiUser]:
    query = _SELECT.order_by(c.c.name, u.c.name)
    if company_id is not None:
        query = query.where(u.c.company_id == company_id)
    return [_to_user(row) for row in tx.execute(query)]


def remove(tx: Tx, api_user_id: int) -> None:
    """Forget the user and every token it holds (at once: a token names its user)."""
    tx.execute(delete(t).where(t.c.api_user_id == api_user_id))
    tx.execute(delete(u).where(u.c.id == api_user_id))


# --- bearer tokens ---------------------------------------------------------------------------


def add_token(tx: Tx, user: ApiUser, token_hash: bytes, now: datetime, expires: datetime) -> None:
    """Keep a new token's hash, and drop every token that has expired (anyone's)."""
    tx.execute(delete(t).where(t.c.expires_at <= now))
    tx.execute(
        insert(t).values(
            token_hash=token_hash,
            api_user_id=user.id,
            company_id=user.company_id,
            created_at=now,
            expires_at=expires,
        )
    )


_HOLDER = _SELECT.add_columns(t.c.expires_at.label("expires_at")).join(
    t, and_(t.c.api_user_id == u.c.id, t.c.company_id == u.c.company_id)
)


def holder(tx: Tx, token_hash: bytes, now: datetime) -> TokenHolder | None:
    """Whose token this is, while it is live: bound to its user's company."""
    row = tx.execute(
        _HOLDER.where(and_(t.c.token_hash == token_hash, t.c.expires_at > now))
    ).one_or_none()
    if row is None:
        return None
    return TokenHolder(_to_user(row), as_utc(row.expires_at))


# --- DatabaseDownload/List's cursor ------------------------------------------------------------


def download_cursor(tx: Tx, api_user_id: int, *, lock: bool = False) -> int:
    """How far the user has taken the exported transactions; with ``lock``, its row is
    held to the transaction's end, so two downloads that move the cursor take turns."""
    query = select(u.c.download_cursor).where(u.c.id == api_user_id)
    value = tx.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if value is None:
        raise UnknownApiUser()
    return int(value)


def advance_download_cursor(tx: Tx, api_user_id: int, cursor: int) -> None:
    """The user has taken the exported transactions up to ``cursor``; never moves back."""
    tx.execute(
        update(u)
        .where(and_(u.c.id == api_user_id, u.c.download_cursor < cursor))
        .values(download_cursor=cursor)
    )


# --- the channel each order came in through ----------------------------------------------------


def remember_connections(tx: Tx, company_id: int, connections: Mapping[str, int]) -> None:
    """Note on each order (by number) the UserConnectionId it was sent with: one statement
    per connection, touching only the orders that name another (the intake writes it with
    a new order, so usually none)."""
    numbers_of: dict[int, list[str]] = {}
    for number, connection in connections.items():
        numbers_of.setdefault(connection, []).append(number)
    for connection, numbers in numbers_of.items():
        tx.execute(
            update(o)
            .where(
                and_(
                    o.c.company_id == company_id,
                    in_texts(o.c.order_number, "b_numbers"),
                    o.c.user_connection_id.is_distinct_from(connection),
                )
            )
            .values(user_connection_id=connection),
            {"b_numbers": numbers},
        )
