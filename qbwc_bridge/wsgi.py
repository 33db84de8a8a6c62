"""The WSGI entry point for gunicorn: ``qbwc_bridge.wsgi:application``.

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
        from qbwc_bridge.web import make_wsgi_app

        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s",
        )
        _app = make_wsgi_app(settings)
    return _app


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return load()(environ, start_response)  # type: ignore[no-any-return]
