"""The HTTP layer: the WSGI application (/qbwc mounted, /api, /healthz, /metrics), the
gunicorn entry point and the development server."""
