"""A private, throwaway PostgreSQL server that a test may stop and start at will.

The shared test server (QBWC_BRIDGE_TEST_POSTGRES_URL) cannot be restarted under other
tests' feet; a cluster of one's own can. It lives in its own temporary directory, listens on
127.0.0.1 at a free port with trust authentication (no Unix socket, so parallel clusters
never collide), and runs without fsync: its data is worth nothing once the test ends.
PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from servers import free_port
from sqlalchemy import create_engine

SERVER_USER = "postgres"
DATABASE = "qbwc_bridge"
TIMEOUT = 60  # seconds pg_ctl may wait for a start or a stop

# Settings that make a throwaway server fast and private.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    # Safe against a server crash (the OS still holds what was written), which is all a
    # test does to it; synchronous_commit stays on, so a commit survives "immediate" stops.
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "16MB",
    "logging_collector": "off",
}


def find_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: pg_config's, the PATH's, or Debian's layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout
            candidates.append(Path(out.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    # Debian and Ubuntu keep the server binaries off the PATH; the newest version first.
    candidates += [
        Path(p).parent
        for p in sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
            reverse=True,
        )
    ]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, where it never puts a client socket.

    While the server is down its port is free; a port from the ephemeral range (what
    free_port() returns) could meanwhile become some busy process's outgoing source port,
    and the server could not start on it again.
    """
    low = 32768
    with suppress(OSError, ValueError, IndexError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if low <= 12000:
        return free_port()
    for _ in range(50):
        port = random.randint(10000, low - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


def _server_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        pytest.skip("running as root, and PostgreSQL will not: no runuser to switch users")
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.skip(f"running as root, and PostgreSQL will not: no '{SERVER_USER}' OS user")


class PrivateCluster:
    """One initdb'd data directory and the server on it; ``stop`` and ``start`` are real."""

    def __init__(self, bindir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.logfile = root / "server.log"
        self.user = user
        self.port = quiet_port()
        self.database = DATABASE

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        """The test database's URL (created by ``create``)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command: list[str] = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        # Our PG* variables (PGDATA, PGPORT, ...) must not steer the private server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            command,
            cwd=self.root,  # the server user may not be allowed into ours
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT + 30,
            check=False,
        )

    def _checked(self, tool: str, *args: str) -> None:
        result = self._run(tool, *args)
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{self.server_log()}"
            )

    def create(self) -> None:
        """initdb, then the settings, a start, and the test database."""
        self._checked(
            "initdb",
            "-D", str(self.data),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        lines = [f"{name} = {value}" for name, value in SETTINGS.items()]
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# the test's private cluster\n" + "\n".join(lines) + "\n")
        for attempt in range(3):
            try:
                self.start()
                break
            except RuntimeError:
                # quiet_port() only proposes a port; another process may have taken it since.
                if attempt == 2 or "Address already in use" not in self.server_log():
                    raise
                self.port = quiet_port()
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.database}"')
        finally:
            admin.dispose()

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        self._checked(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile),
            "-o", f"-p {self.port}", "-w", "-t", str(TIMEOUT),
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (sessions told and ended) or "immediate" (a crash)."""
        self._checked("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(TIMEOUT))

    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data)).returncode == 0

    def server_log(self) -> str:
        try:
            return self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def destroy(self) -> None:
        if self.data.is_dir() and self.running():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A fresh cluster, started, with an empty ``qbwc_bridge`` database; always removed after.

    Skips the test, saying why, when PostgreSQL's server binaries are not installed.
    """
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "a private PostgreSQL cluster needs initdb, pg_ctl and postgres "
            "(on the PATH, in `pg_config --bindir`, or in /usr/lib/postgresql/*/bin)"
        )
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="qbwc-pgcluster-"))
    cluster = PrivateCluster(bindir, root, user)
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()
