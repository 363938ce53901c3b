"""The US equity exchanges' trading calendar, computed from the rules NYSE and Nasdaq publish (pure).

A *session* is one trading day in exchange time (America/New_York): pre-market from 04:00, the regular session
09:30-16:00 (13:00 on an early close), after-hours to 20:00 (17:00 after an early close). The rules, as the
exchanges publish them (NYSE Rule 7.2; Nasdaq follows the same holidays):

- Holidays: New Year's Day (1 January), Martin Luther King Jr. Day (3rd Monday of January), Washington's
  Birthday (3rd Monday of February), Good Friday (two days before Easter Sunday, by the Gregorian computus),
  Memorial Day (last Monday of May), Juneteenth (19 June, from 2022), Independence Day (4 July), Labor Day
  (1st Monday of September), Thanksgiving (4th Thursday of November), Christmas (25 December).
- Observed dates: a fixed-date holiday on a Sunday is observed the Monday after, on a Saturday the Friday before,
  except New Year's Day on a Saturday, which is not observed at all (the Friday before closes a year and
  the exchanges keep it open).
- Early closes at 13:00: the day after Thanksgiving; 24 December, when it is a trading day; 3 July, when it is
  a trading day and 4 July is a weekday (not when the holiday is observed on the 3rd or on the 5th).
- Closures the rules cannot know (a national day of mourning) are listed in ``SPECIAL_CLOSURES`` as the
  exchanges announce them.

Everything here is a function of a date or an instant: no clock is read (``now`` is always passed in), so the
simulated venue, the order API and tests share one calendar and can drive it to any time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from vocab.clock import EASTERN

PRE_MARKET = dt.time(4, 0)
OPEN = dt.time(9, 30)
CLOSE = dt.time(16, 0)
EARLY_CLOSE = dt.time(13, 0)
AFTER_HOURS_END = dt.time(20, 0)
EARLY_AFTER_HOURS_END = dt.time(17, 0)

# Closures announced ad hoc, which no rule yields: date -> name.
SPECIAL_CLOSURES: dict[dt.date, str] = {
    dt.date(2025, 1, 9): "National Day of Mourning for President Jimmy Carter",
}

MIN_YEAR, MAX_YEAR = 1990, 2200  # the rules above hold (Juneteenth from 2022); beyond: refused, not guessed


def easter(year: int) -> dt.date:
    """Easter Sunday of ``year`` in the Gregorian calendar (the anonymous Gregorian computus, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (Monday 0) of the month; ``n`` = -1: the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """A fixed-date holiday as observed: Saturday -> the Friday before, Sunday -> the Monday after."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"the calendar covers {MIN_YEAR}-{MAX_YEAR}, not {year}")


@lru_cache(maxsize=64)
def holidays(year: int) -> dict[dt.date, str]:
    """The exchanges' full-day closures in ``year`` (weekdays only), date -> name, in date order."""
    _check_year(year)
    out: dict[dt.date, str] = {}
    new_year = dt.date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not observed on the Friday before
        out[_observed(new_year)] = "New Year's Day"
    out[_nth_weekday(year, 1, 0, 3)] = "Martin Luther King, Jr. Day"
    out[_nth_weekday(year, 2, 0, 3)] = "Washington's Birthday"
    out[easter(year) - dt.timedelta(days=2)] = "Good Friday"
    out[_nth_weekday(year, 5, 0, -1)] = "Memorial Day"
    if year >= 2022:
        out[_observed(dt.date(year, 6, 19))] = "Juneteenth National Independence Day"
    out[_observed(dt.date(year, 7, 4))] = "Independence Day"
    out[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, 3, 4)] = "Thanksgiving Day"
    out[_observed(dt.date(year, 12, 25))] = "Christmas Day"
    for day, name in SPECIAL_CLOSURES.items():
        if day.year == year:
            out[day] = name
    return dict(sorted(out.items()))


def is_trading_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


@lru_cache(maxsize=64)
def early_closes(year: int) -> dict[dt.date, str]:
    """The trading days of ``year`` that close at 13:00, date -> why."""
    _check_year(year)
    out: dict[dt.date, str] = {}
    july3, july4 = dt.date(year, 7, 3), dt.date(year, 7, 4)
    if july4.weekday() < 5 and is_trading_day(july3):
        out[july3] = "the day before Independence Day"
    out[_nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1)] = "the day after Thanksgiving"
    eve = dt.date(year, 12, 24)
    if is_trading_day(eve):
        out[eve] = "Christmas Eve"
    return dict(sorted((d, why) for d, why in out.items() if is_trading_day(d)))


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day; every instant is timezone-aware, in exchange time."""

    date: dt.date
    pre_market: dt.datetime
    open: dt.datetime
    close: dt.datetime
    after_hours_end: dt.datetime
    early_close: bool

    def record(self) -> dict[str, object]:
        """As the HTTP API shows it (ISO-8601 with the exchange's offset)."""
        return {"date": self.date.isoformat(), "open": self.open.isoformat(), "close": self.close.isoformat(),
                "pre_market_open": self.pre_market.isoformat(), "after_hours_close": self.after_hours_end.isoformat(),
                "early_close": self.early_close}


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=EASTERN)


def session(day: dt.date) -> Session | None:
    """The session on ``day``, or None when the exchanges are closed that day."""
    if not is_trading_day(day):
        return None
    early = day in early_closes(day.year)
    return Session(day, _at(day, PRE_MARKET), _at(day, OPEN), _at(day, EARLY_CLOSE if early else CLOSE),
                   _at(day, EARLY_AFTER_HOURS_END if early else AFTER_HOURS_END), early)


def sessions(start: dt.date, end: dt.date) -> list[Session]:
    """Every session from ``start`` to ``end`` inclusive."""
    out = []
    day = start
    while day <= end:
        s = session(day)
        if s is not None:
            out.append(s)
        day += dt.timedelta(days=1)
    return out


def next_session(day: dt.date) -> Session:
    """The first session on or after ``day``."""
    for _ in range(15):  # no closure run is longer than a long weekend plus a special closure
        s = session(day)
        if s is not None:
            return s
        day += dt.timedelta(days=1)
    raise AssertionError(f"no session within 15 days of {day}")  # pragma: no cover


PHASES = ("closed", "pre_market", "open", "after_hours")


@dataclass(frozen=True, slots=True)
class Clock:
    """The market clock at one instant (Alpaca's ``/v2/clock``): every field in exchange time."""

    timestamp: dt.datetime
    is_open: bool
    next_open: dt.datetime
    next_close: dt.datetime
    phase: str  # one of PHASES: where ``timestamp`` falls in its day

    def record(self) -> dict[str, object]:
        return {"timestamp": self.timestamp.isoformat(), "is_open": self.is_open,
                "next_open": self.next_open.isoformat(), "next_close": self.next_close.isoformat(),
                "phase": self.phase}


def clock(now: dt.datetime) -> Clock:
    """The clock at ``now`` (timezone-aware): open between a session's open and close; ``next_open`` is the next
    open strictly after now, ``next_close`` the close of the session in progress, else of the next one."""
    if now.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware instant")
    here = now.astimezone(EASTERN)
    today = session(here.date())
    later = next_session(here.date() + dt.timedelta(days=1))
    phase = "closed"
    if today is not None:
        if today.pre_market <= here < today.open:
            phase = "pre_market"
        elif today.open <= here < today.close:
            phase = "open"
        elif today.close <= here < today.after_hours_end:
            phase = "after_hours"
    is_open = phase == "open"
    upcoming = today if today is not None and here < today.open else later
    assert today is not None or not is_open
    return Clock(here, is_open, upcoming.open, today.close if is_open and today else upcoming.close, phase)


def clock_at_ns(epoch_ns: int) -> Clock:
    """The clock at an instant given as nanoseconds since the Unix epoch (how the rest of tickfan counts)."""
    seconds, ns = divmod(epoch_ns, 1_000_000_000)
    return clock(dt.datetime.fromtimestamp(seconds, EASTERN).replace(microsecond=ns // 1000))


def calendar_year(year: int) -> dict[str, object]:
    """The year as ``GET /v1/calendar`` shows it beside its sessions: holidays and early closes by date."""
    return {"holidays": [{"date": d.isoformat(), "name": n} for d, n in holidays(year).items()],
            "early_closes": [{"date": d.isoformat(), "reason": why, "close": EARLY_CLOSE.isoformat("minutes")}
                             for d, why in early_closes(year).items()]}
