"""The one clock: ITCH timestamps, the session's date, and the Unix epoch every ``*_time_ns`` field carries.

Nasdaq's ITCH 5.0 counts nanoseconds from midnight US Eastern of the trading day (the simulator stamps the
same way: ``itch_now``). ``itch_to_epoch_ns`` turns such a
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


def today_eastern() -> dt.date:
    """Today's date in New York: the default session date of a live feed (and of the simulator)."""
    return eastern_date(time.time_ns())


def itch_now(day: dt.date) -> int:
    """Now as an ITCH timestamp of the session dated ``day`` (ns since that date's Eastern midnight): how the
    simulator stamps its messages. Past the next midnight it keeps counting (the 6-byte field holds 78 hours),
    so a session that runs over midnight stays on its own date's clock."""
    return time.time_ns() - eastern_midnight_ns(day)


def parse_date(text: str) -> dt.date:
    """A session date as given on a command line (``YYYY-MM-DD``); ValueError says what is wrong."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


# MoldUDP64 session names that carry their session's date: 8 digits YYYYMMDD, then 2 free characters. ``tickfan
# replay`` names its sessions this way so a node learns a replayed file's date from the wire (ITCH itself has no
# date); a name that does not start with a valid date (a live feed's) carries none.
_DATED_SESSION_YEARS = range(1990, 2100)


def dated_session(day: dt.date, tag: str = "RP") -> str:
    """A 10-character MoldUDP64 session name carrying ``day`` (``20190130RP``)."""
    if len(tag) != 2:
        raise ValueError("a dated session's tag is 2 characters")
    return f"{day:%Y%m%d}{tag}"


def session_date(name: str) -> dt.date | None:
    """The date a MoldUDP64 session name carries (``dated_session``), or None."""
    head = name[:8]
    if len(name) != 10 or not head.isdigit() or not head.isascii():
        return None
    year, month, day = int(head[:4]), int(head[4:6]), int(head[6:])
    if year not in _DATED_SESSION_YEARS:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None
