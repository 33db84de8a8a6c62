"""One error wrapper for all eight callbacks: a failure value, a log line, never a crash.

The Web Connector shows a SOAP fault as an unexplained error and stops; a callback's own
failure value (-1, "", "nvu") plus getLastError tells the user what happened instead.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from qbwc_bridge import metrics
from qbwc_bridge.engine.run import RunEngine, current_call
from qbwc_bridge.errors import BridgeError, InvalidTicket

log = logging.getLogger("qbwc_bridge.soap")

T = TypeVar("T")


def remote_address(ctx: Any) -> str:
    environ = getattr(ctx.transport, "req_env", None) or {}
    return str(environ.get("REMOTE_ADDR", ""))


def run_ref(ticket: str | None) -> str:
    """A short, non-reversible tag of the ticket for logs: the ticket itself never appears."""
    return hashlib.sha256(ticket.encode()).hexdigest()[:10] if ticket else "-"


def guarded(
    ctx: Any,
    name: str,
    ticket: str | None,
    failure: T,
    call: Callable[[RunEngine], T],
    *,
    explain: Callable[[str], T] | None = None,
    judge: Callable[[T], str] | None = None,
) -> T:
    """Run one callback against the engine; any failure becomes ``failure`` and a log line.

    ``judge`` names the outcome of an answer that is not plainly "ok" (a refused login).
    """
    engine: RunEngine | None = ctx.app.engine
    if engine is None:
        raise RuntimeError("this spyne application was built without a RunEngine")
    started, started_cpu = time.perf_counter(), time.thread_time()
    outcome = "ok"
    noted: dict[str, object] = {}
    token = current_call.set(noted)
    try:
        answer = call(engine)
        if judge is not None:
            outcome = judge(answer)
        return answer
    except InvalidTicket as error:
        outcome = "invalid-ticket"
        _remember(engine, ticket, error.message)
        return failure
    except BridgeError as error:
        outcome = f"error: {error.message}"
        _remember(engine, ticket, error.message)
        # getLastError's answer is shown to the user: the reason beats a generic failure.
        return explain(error.message) if explain else failure
    except Exception as error:
        outcome = f"crash: {type(error).__name__}"
        log.exception("callback %s failed", name)
        _remember(engine, ticket, f"The service failed ({type(error).__name__}); see its log.")
        return failure
    finally:
        metrics.observe_callback(name, outcome.split(":")[0], time.perf_counter() - started)
        current_call.reset(token)
        # run= is a tag of the ticket, run_id and company as the engine found them: never
        # the ticket itself or a password.
        log.info(
            "callback=%s run=%s company=%s run_id=%s cpu_ms=%.1f duration_ms=%.1f outcome=%s",
            name,
            run_ref(ticket),
            noted.get("company", "-"),
            noted.get("run", "-"),
            # CPU spent by this worker thread; the rest of duration_ms was waiting (database,
            # disk, or the machine running something else).
            (time.thread_time() - started_cpu) * 1000,
            (time.perf_counter() - started) * 1000,
            outcome,
        )


def _remember(engine: RunEngine, ticket: str | None, message: str) -> None:
    """Keep the error for getLastError where a run exists; bad tickets answer by themselves."""
    if not ticket:
        return
    try:
        engine.remember_error(ticket, message)
    except BridgeError:
        pass
    except Exception:
        log.exception("could not keep the error for getLastError")
