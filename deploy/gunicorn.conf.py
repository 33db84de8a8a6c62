"""gunicorn settings: `gunicorn -c deploy/gunicorn.conf.py qbwc_bridge.web.wsgi:application`.

Every callback is a short database transaction; run state is in the database, so any
worker (or host) can serve any callback of any run.

Threaded workers (gthread), because a connection can be slow without being busy. A sync
worker reads one request at a time: as many clients as there are workers, each sending
headers and part of a body and then nothing, held the whole service until `timeout`
killed the workers, and /healthz went unanswered. A gthread worker serves `threads`
connections at once; its main loop accepts, times out idle connections and reports to the
master, so a stalled client holds one thread, not a process. A callback costs the same
under both (`qbwc-bridge bench --only callbacks`: the same CPU time and median time per
callback as under sync workers).
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("QBWC_BRIDGE_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("QBWC_BRIDGE_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
# Connections one worker serves at once: 16 stalled clients still leave a thread free in
# every worker. Bounded, because threads share the process's database pool (15
# connections) and its one interpreter: more threads would wait on those, not work.
threads = int(os.environ.get("QBWC_BRIDGE_THREADS", 16))
# A worker accepts a connection only when a thread is free for it, as a sync worker does:
# no callback waits in one worker's queue behind stalled clients while another worker
# idles, and whatever no worker can take waits in the listen backlog.
worker_connections = threads
# No keep-alive: a kept-alive connection would hold one of those slots while idle (and
# gunicorn warns that none fit). nginx speaks HTTP/1.0 to gunicorn, one request per
# connection, and the sync workers never kept connections alive either. With 0, a client
# that connects and sends nothing holds a thread for gunicorn's 5 s wait for its first
# bytes, and is then closed.
keepalive = 0
# Time limits. A request body that stalls gets 408 from the application after
# QBWC_BRIDGE_BODY_TIMEOUT_SECONDS (30), which frees its thread. gunicorn has no timeout
# for slow headers, and when it closes a connection it waits up to 2 s, in the worker's
# main loop, for the client to close its end: nginx, in front, takes both (it buffers
# requests, times out slow clients and closes promptly), which is why gunicorn listens on
# loopback. `timeout` is the master's heartbeat check of each worker's main loop, which
# never waits on a request: a worker that stops answering it for a minute is restarted.
timeout = 60
graceful_timeout = 30  # a worker finishes the callbacks it is serving before it exits
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
