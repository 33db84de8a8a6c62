"""Real servers for acceptance tests: the WSGI app on loopback, or gunicorn as in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qbwc_bridge.config import Settings
from qbwc_bridge.store import Store
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

REPO = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


@contextmanager
def bridge(store: Store, settings: Settings) -> Iterator[str]:
    """The dev server with ``settings`` on the test's store; yields its base URL."""
    with BackgroundServer(make_wsgi_app(settings, store)) as server:
        yield server.base_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    base: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {base} did not come up")


GUNICORN_COMMAND = [
    str(GUNICORN),
    "-c",
    str(REPO / "deploy" / "gunicorn.conf.py"),
    "qbwc_bridge.web.wsgi:application",
]


def gunicorn_env(database_url: str, port: int, workers: int) -> dict[str, str]:
    """The environment gunicorn runs in, as deployed: settings come from QBWC_BRIDGE_*."""
    return {
        **os.environ,
        "QBWC_BRIDGE_DATABASE_URL": database_url,
        "QBWC_BRIDGE_BIND": f"127.0.0.1:{port}",
        "QBWC_BRIDGE_WORKERS": str(workers),
    }


@contextmanager
def gunicorn(
    database_url: str,
    *,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[str]:
    """gunicorn with deploy/gunicorn.conf.py on a free port; yields the /qbwc URL.

    Its output goes to ``log`` (or nowhere): never to an unread pipe, which would block the
    service's logging once full.
    """
    port = free_port()
    env = {**gunicorn_env(database_url, port, workers), **(extra_env or {})}
    with open(log or os.devnull, "ab") as output:
        process = subprocess.Popen(
            GUNICORN_COMMAND,
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        yield f"{base}/qbwc"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
