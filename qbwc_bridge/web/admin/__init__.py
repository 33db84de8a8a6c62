"""The admin console at /admin (docs/console.md): a Flask application that web/app.py hands
the /admin paths to, server-rendered pages over the same services as the command line."""

from __future__ import annotations

from qbwc_bridge.web.admin.views import create_app

__all__ = ["create_app"]
