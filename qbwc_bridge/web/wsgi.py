"""The WSGI entry point for gunicorn: ``qbwc_bridge.web.wsgi:application``.

Built on first use rather than at import, so importing this module opens nothing;
deploy/gunicorn.conf.py builds it as each worker starts (``load``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

_app: Any = None


def load() -> Any:
    """The process's one application, built from QBWC_BRIDGE_* settings on first call."""
    global _app
    if _app is None:
        from qbwc_bridge.config import Settings
        from qbwc_bridge.web.app import make_wsgi_app

        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s",
        )
        _app = make_wsgi_app(settings)
    return _app


def check_schema() -> None:
    """Refuse to serve a database whose schema is not this release's (RuntimeError says why).

    gunicorn's master calls it once before forking workers (deploy/gunicorn.conf.py), so
    a forgotten ``init-db`` after an upgrade stops the start with one clear line instead of
    failing callbacks. A database that is down does not stop the start: the workers answer
    "busy" until it is back, as they do when it goes down later.
    """
    from qbwc_bridge.config import Settings
    from qbwc_bridge.errors import StoreUnavailable
    from qbwc_bridge.store import migrate
    from qbwc_bridge.store.database import Database

    database = Database(Settings.from_env().database_url)
    try:
        problem = migrate.schema_problem(database)
    except StoreUnavailable:
        logging.getLogger(__name__).warning(
            "could not check the database schema: the database is unreachable"
        )
        return
    finally:
        database.dispose()  # no connection may be inherited by the forked workers
    if problem:
        raise RuntimeError(problem)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return load()(environ, start_response)  # type: ignore[no-any-return]
