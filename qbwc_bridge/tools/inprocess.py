"""Serve single requests to the WSGI application in this process, timed, for the
benchmarks of server time (no network, no HTTP client): one place builds the environ and
reads the answer, and one place makes the temporary bridge they measure."""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from qbwc_bridge.config import Settings
from qbwc_bridge.store import Database, Store, upgrade
from qbwc_bridge.store.schema import metadata


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    content: bytes
    milliseconds: float  # from handing the request over to the answer's last byte


def call(app: Any, method: str, path: str, body: bytes, **environ: str) -> Answer:
    """One request; ``environ`` adds or replaces WSGI keys (QUERY_STRING, HTTP_COOKIE, …)."""
    request: dict[str, Any] = {}
    setup_testing_defaults(request)
    request.update(
        {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "REMOTE_ADDR": "127.0.0.1",
            **environ,
        }
    )
    answered: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        answered.append((status, headers))

    began = time.perf_counter()
    answer = app(request, start_response)
    try:
        content = b"".join(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    milliseconds = (time.perf_counter() - began) * 1000
    status, headers = answered[0]
    return Answer(int(status.split()[0]), headers, content, milliseconds)


@contextmanager
def bridge(postgres: str | None = None) -> Iterator[tuple[Store, Settings]]:
    """A migrated store: a SQLite file in a temporary folder, or the PostgreSQL database
    ``postgres`` names, emptied first (as `bench --postgres` says)."""
    with tempfile.TemporaryDirectory() as folder:
        url = postgres or f"sqlite:///{Path(folder) / 'bench.db'}"
        database = Database(url)
        if postgres:
            with database.engine.begin() as conn:
                metadata.drop_all(conn)
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade(database)
        try:
            yield Store(database), Settings(database_url=url)
        finally:
            database.dispose()
