"""``GET /v1/clock`` and ``GET /v1/calendar``: the market clock and the trading calendar (``vocab.calendar``), in
exchange time (America/New_York), every instant ISO-8601 with its offset.

The clock answers from the published calendar alone (as Alpaca's does): whether the regular session is open
now, the next open and the next close. Orders are not gated by it: they are gated by the feed's market state
(``order_api.model.pre_trade``), the one source of truth, which in the demo's simulated session stays open
whatever the calendar says unless the venue is told to close.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from order_api.model import ApiError
from vocab import calendar

MAX_CALENDAR_DAYS = 3 * 366  # one request spans at most this many days (a bounded answer)


def clock_body(now_ns: int) -> dict[str, object]:
    return calendar.clock_at_ns(now_ns).record()


def _date(text: str | None, name: str, default: dt.date) -> dt.date:
    if text is None:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a date, YYYY-MM-DD: {text[:40]!r}") from None


def calendar_body(start_text: str | None, end_text: str | None, now_ns: int) -> dict[str, object]:
    """Sessions from ``start`` to ``end`` inclusive (default: the current year), and the holidays and early
    closes of every year they touch."""
    today = calendar.clock_at_ns(now_ns).timestamp.date()
    start = _date(start_text, "start", dt.date(today.year, 1, 1))
    end = _date(end_text, "end", dt.date(start.year, 12, 31))
    if end < start:
        raise ApiError(400, "invalid_parameter", "end is before start")
    if (end - start).days >= MAX_CALENDAR_DAYS:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_CALENDAR_DAYS} days per request")
    try:
        years = [{"year": y, **calendar.calendar_year(y)} for y in range(start.year, end.year + 1)]
        sessions = [s.record() for s in calendar.sessions(start, end)]
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", str(e)) from None
    return {"start": start.isoformat(), "end": end.isoformat(), "timezone": "America/New_York",
            "sessions": sessions, "years": years}


NowNs = Callable[[], int]
