"""The WSGI entry point for gunicorn: ``qbwc_bridge.wsgi:application``.

Built on first request rather than at import, so importing this module opens nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_app: Any = None


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    global _app
    if _app is None:
        import logging

        from qbwc_bridge.config import Settings
        from qbwc_bridge.web import make_wsgi_app

        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s",
        )
        _app = make_wsgi_app(settings)
    return _app(environ, start_response)  # type: ignore[no-any-return]
