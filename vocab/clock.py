"""The one clock ITCH timestamps and latency measurements share.

ITCH stamps events in nanoseconds since midnight. The simulator uses midnight UTC of the host clock, so any
process on the host (fan-out, clients on loopback) can compute end-to-end latency as now minus the stamp.

Nasdaq's ITCH 5.0 counts from midnight US Eastern of the trading day. ``itch_to_epoch_ns`` turns such a
stamp plus the session's date into nanoseconds since the Unix epoch (the clock every ``*_time_ns`` field is
meant to carry); ``epoch_to_itch`` is the inverse, for a simulator that stamps ITCH the way Nasdaq does.

A stamp is read as nanoseconds *elapsed* since that midnight (the local midnight's instant plus the count),
so the conversion is exact and invertible on every day. The two readings (elapsed, or Eastern wall clock)
differ only after 02:00 on the two Sundays a year when the clocks change, when no US market trades.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache
from zoneinfo import ZoneInfo

NS_PER_DAY = 86_400 * 1_000_000_000
NS_PER_SECOND = 1_000_000_000
EASTERN = ZoneInfo("America/New_York")


def ns_since_midnight() -> int:
    return time.time_ns() % NS_PER_DAY


@lru_cache(maxsize=64)
def eastern_midnight_ns(day: dt.date) -> int:
    """Nanoseconds since the Unix epoch of 00:00 America/New_York on ``day`` (DST included)."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=EASTERN)
    return int(midnight.timestamp()) * NS_PER_SECOND  # US Eastern midnights fall on whole seconds


def itch_to_epoch_ns(itch_ns: int, day: dt.date) -> int:
    """An ITCH timestamp (ns since midnight US Eastern of ``day``, the session's date) as ns since the epoch."""
    return eastern_midnight_ns(day) + itch_ns


def epoch_to_itch(epoch_ns: int) -> tuple[dt.date, int]:
    """The inverse of ``itch_to_epoch_ns``: (the US Eastern date, ns since that date's Eastern midnight)."""
    seconds, _ = divmod(epoch_ns, NS_PER_SECOND)
    day = dt.datetime.fromtimestamp(seconds, EASTERN).date()
    return day, epoch_ns - eastern_midnight_ns(day)


def eastern_date(epoch_ns: int) -> dt.date:
    """The US Eastern calendar date at an instant (a session's date, from a clock reading)."""
    return epoch_to_itch(epoch_ns)[0]
