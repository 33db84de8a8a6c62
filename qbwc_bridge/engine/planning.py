"""How many orders a run claims and how many requests one message carries.

QuickBooks handles one message at a time and the Web Connector gives up on an exchange
after about two minutes, so the budget comes from QuickBooks' measured time per request,
aiming well below that (TARGET_EXCHANGE_SECONDS).
"""

from __future__ import annotations

TARGET_EXCHANGE_SECONDS = 30.0
TARGET_RUN_SECONDS = 600.0
DEFAULT_SECONDS_PER_REQUEST = 0.05
MAX_REQUESTS_PER_MESSAGE = 140
REQUESTS_PER_ORDER = 6  # customer add, check, add, and a payment check + add, roughly
SMOOTHING = 0.3  # weight of the newest measurement in the moving average
SPEED_CHANGE_WORTH_SAVING = 0.02  # a smaller change does not move a message's size


def request_budget(seconds_per_request: float | None) -> int:
    """Requests that fit in one exchange at the measured speed."""
    spr = seconds_per_request or DEFAULT_SECONDS_PER_REQUEST
    return max(1, min(MAX_REQUESTS_PER_MESSAGE, int(TARGET_EXCHANGE_SECONDS / max(spr, 1e-4))))


def batch_size(seconds_per_request: float | None, batch_min: int, batch_max: int) -> int:
    """Orders to claim for one run: fewer when QuickBooks is slow."""
    spr = seconds_per_request or DEFAULT_SECONDS_PER_REQUEST
    fitting = int(TARGET_RUN_SECONDS / (REQUESTS_PER_ORDER * max(spr, 1e-4)))
    return max(batch_min, min(batch_max, fitting))


def updated_speed(previous: float | None, elapsed_seconds: float, requests: int) -> float:
    """Moving average of seconds per request after one exchange of ``requests`` requests."""
    measured = elapsed_seconds / max(requests, 1)
    if previous is None:
        return measured
    return (1 - SMOOTHING) * previous + SMOOTHING * measured


def speed_changed(previous: float | None, updated: float) -> bool:
    """Is ``updated`` different enough from the stored speed to write it?

    Every answer measures QuickBooks again; writing each tiny change would rewrite the
    company's row at every receiveResponseXML. A drift still gets written: each
    measurement moves the average by SMOOTHING of its distance from the stored value.
    """
    return previous is None or abs(updated - previous) > SPEED_CHANGE_WORTH_SAVING * previous
