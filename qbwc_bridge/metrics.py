"""Per-process callback counters and latencies, rendered in the Prometheus text format.

Queue and run figures come from the database (the same for every worker); these counters
are this worker's own, labelled with its pid so a scrape of several workers adds up.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
_calls: dict[tuple[str, str], int] = defaultdict(int)
_buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
_sums: dict[str, float] = defaultdict(float)


def observe_callback(name: str, outcome: str, seconds: float) -> None:
    with _lock:
        _calls[(name, outcome)] += 1
        counts = _buckets[name]
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[index] += 1
                break
        else:
            counts[-1] += 1
        _sums[name] += seconds


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_callbacks() -> list[str]:
    pid = os.getpid()
    lines = [
        "# HELP qbwc_bridge_callbacks_total Web Connector callbacks served by this worker.",
        "# TYPE qbwc_bridge_callbacks_total counter",
    ]
    with _lock:
        for (name, outcome), count in sorted(_calls.items()):
            lines.append(
                f'qbwc_bridge_callbacks_total{{callback="{name}",outcome="{escape_label(outcome)}",'
                f'pid="{pid}"}} {count}'
            )
        lines += [
            "# HELP qbwc_bridge_callback_seconds Time to answer a callback.",
            "# TYPE qbwc_bridge_callback_seconds histogram",
        ]
        for name, counts in sorted(_buckets.items()):
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                label = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'qbwc_bridge_callback_seconds_bucket{{callback="{name}",le="{label}",'
                    f'pid="{pid}"}} {running}'
                )
            lines.append(
                f'qbwc_bridge_callback_seconds_sum{{callback="{name}",pid="{pid}"}} {_sums[name]:.6f}'
            )
            lines.append(
                f'qbwc_bridge_callback_seconds_count{{callback="{name}",pid="{pid}"}} {running}'
            )
    return lines
