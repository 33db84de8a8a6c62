"""The worker: takes due channel tasks under a lease and runs them, until told to stop.

Any number of workers on any hosts may run against one database: a task is leased
(store/channels.py), the lease is renewed after every page, and a dead worker's lease
expires after QBWC_BRIDGE_TASK_LEASE_SECONDS. SIGTERM or SIGINT lets the request in flight
finish, then the worker stops (a pull cut short keeps its window: the next one reads it
again, harmlessly).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import LeasedTask, PullReport, TaskKind
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import push as push_service
from qbwc_bridge.services.push import PushReport
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import channels as channel_store

log = logging.getLogger("qbwc_bridge.worker")

# How often an idle worker looks for work: a pull the Web Connector's login asked for
# starts within this long.
POLL_SECONDS = 1.0


class Stopping(BridgeError):
    """The worker was asked to stop; the next pull reads this window again."""


@dataclass(frozen=True, slots=True)
class Ran:
    """One task a worker ran, for its log and the tests."""

    channel: str
    kind: TaskKind
    report: PullReport | None
    lease_kept: bool
    pushed: PushReport | None = None


class Worker:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        client: channel_service.ClientFactory | None = None,
        receiver: push_service.ReceiverFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client = client
        self.receiver = receiver
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=settings.task_lease_seconds)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run_forever(self, on_ran: Callable[[Ran], None] | None = None) -> None:
        """Run tasks until SIGTERM/SIGINT (or stop()); never two of one channel at once."""
        # Signal handlers can only be set in the main thread (a worker thread in a test or
        # the benchmark is stopped with stop()).
        main = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
            if main
            else {}
        )
        try:
            while not self.stopping.is_set():
                ran = self.run_once()
                if ran is not None:
                    if on_ran is not None:
                        on_ran(ran)
                    continue
                self.stopping.wait(self.poll_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("worker %s: signal %s, stopping after the request in flight", self.name, signum)
        self.stopping.set()

    def run_once(
        self,
        channel_id: int | None = None,
        kind: TaskKind = TaskKind.PULL,
        *,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Ran | None:
        """Lease one due task (or that channel's ``kind`` task) and run it; None when none
        is due. ``force`` pushes at once, ignoring a failed delivery's backoff. ``progress``
        hears the orders read so far (a pull) or the deliveries made (a push)."""
        token = f"{self.name}:{secrets.token_hex(8)}"
        with self.store.transaction() as tx:
            task = channel_store.claim_task(tx, token, self.clock(), self.lease, channel_id, kind)
            if task is None:
                return None
            found = channel_store.get(tx, task.channel_id)
        log.info("worker %s: %s of channel %s", self.name, task.kind.value, found.name)
        holder = _Holder(self, task, progress)
        pulled: PullReport | None = None
        pushed: PushReport | None = None
        if task.kind is TaskKind.PULL:
            pulled = channel_service.pull(
                self.store,
                self.settings,
                found,
                clock=self.clock,
                on_page=holder.page_done,
                **({"client": self.client} if self.client else {}),
            )
        else:
            pushed = push_service.push(
                self.store,
                self.settings,
                found,
                force=force,
                clock=self.clock,
                on_delivery=holder.delivered,
                **({"receiver": self.receiver} if self.receiver else {}),
            )
        retry_at = push_service.retry_at(self.store, found) if pushed is not None else None
        now = self.clock()
        if pushed is not None:
            due = push_service.next_push_due(pushed, now, retry_at)
        else:
            due = channel_service.next_pull_due(found, now)
        with self.store.transaction() as tx:
            kept = channel_store.finish_task(tx, holder.task, now, due)
        if not kept:
            log.warning(
                "worker %s: lost the lease of channel %s's %s", self.name, found.name, task.kind
            )
        return Ran(found.name, task.kind, pulled, kept, pushed)


class _Holder:
    """Renews the lease after every page, and stops a pull when the worker stops."""

    def __init__(
        self, worker: Worker, task: LeasedTask, progress: Callable[[int], None] | None
    ) -> None:
        self.worker = worker
        self.task = task
        self.progress = progress
        self.deliveries = 0

    def delivered(self) -> None:
        """A delivery went out: hold the task on, unless the worker is stopping."""
        self.deliveries += 1
        self._renew(0)
        if self.progress is not None:
            self.progress(self.deliveries)

    def page_done(self, received: int) -> None:
        self._renew(received)
        if self.progress is not None:
            self.progress(received)

    def _renew(self, received: int) -> None:
        with self.worker.store.transaction() as tx:
            self.task = channel_store.renew_task(
                tx, self.task, self.worker.clock(), self.worker.lease
            )
        if self.worker.stopping.is_set():
            raise Stopping(
                f"The worker stopped after reading {received} orders; the next pull reads "
                "this window again."
            )
