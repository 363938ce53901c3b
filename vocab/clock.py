"""The one clock ITCH timestamps and latency measurements share.

ITCH stamps events in nanoseconds since midnight. The simulator uses midnight UTC of the host clock, so any
process on the host (fan-out, clients on loopback) can compute end-to-end latency as now minus the stamp.
"""

from __future__ import annotations

import time

NS_PER_DAY = 86_400 * 1_000_000_000


def ns_since_midnight() -> int:
    return time.time_ns() % NS_PER_DAY
