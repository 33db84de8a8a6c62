"""gunicorn settings: `gunicorn -c deploy/gunicorn.conf.py qbwc_bridge.web.wsgi:application`.

Every callback is a short database transaction, so sync workers are enough; run state is
in the database, so any worker (or host) can serve any callback of any run. Sync workers
take the next connection only when free, so no callback waits behind a busy worker while
another idles (measured against gthread with 2 threads under `qbwc-bridge bench`: no
better throughput, no better p99).
"""
from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("QBWC_BRIDGE_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("QBWC_BRIDGE_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "sync"
# The Web Connector waits about two minutes for an answer; no callback should come close.
timeout = 60
graceful_timeout = 30  # a worker finishes the callback it is serving before it exits
keepalive = 5
# Each worker touches its heartbeat file on every request; in memory that never waits on
# the disk PostgreSQL is flushing to.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
limit_request_line = 8190
accesslog = "-" if os.environ.get("QBWC_BRIDGE_ACCESS_LOG") else None
errorlog = "-"
loglevel = os.environ.get("QBWC_BRIDGE_LOG_LEVEL", "info").lower()
# Behind the TLS-terminating proxy of deploy/nginx.conf.
forwarded_allow_ips = os.environ.get("QBWC_BRIDGE_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):  # gunicorn calls it once, in the master, before any worker
    """Stop here, with one line saying to run init-db, if the schema is not this release's."""
    from qbwc_bridge.web import wsgi

    wsgi.check_schema()


def post_worker_init(worker):  # gunicorn calls it with the worker
    """Build the application before the first request, then freeze what exists.

    gc.freeze() moves the long-lived objects (modules, schemas, templates) out of the
    garbage collector's sight, so a full collection no longer pauses a callback for
    tens of milliseconds.
    """
    import gc

    from qbwc_bridge.web import wsgi

    wsgi.load()
    gc.freeze()

