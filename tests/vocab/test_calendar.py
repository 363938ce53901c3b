"""The exchange calendar against the calendars NYSE and Nasdaq published for 2025, 2026 and 2027."""

from __future__ import annotations

import datetime as dt

import pytest

from vocab import calendar as cal
from vocab.clock import EASTERN

D = dt.date

PUBLISHED_HOLIDAYS = {
    2025: [D(2025, 1, 1), D(2025, 1, 9), D(2025, 1, 20), D(2025, 2, 17), D(2025, 4, 18), D(2025, 5, 26),
           D(2025, 6, 19), D(2025, 7, 4), D(2025, 9, 1), D(2025, 11, 27), D(2025, 12, 25)],
    2026: [D(2026, 1, 1), D(2026, 1, 19), D(2026, 2, 16), D(2026, 4, 3), D(2026, 5, 25), D(2026, 6, 19),
           D(2026, 7, 3), D(2026, 9, 7), D(2026, 11, 26), D(2026, 12, 25)],
    2027: [D(2027, 1, 1), D(2027, 1, 18), D(2027, 2, 15), D(2027, 3, 26), D(2027, 5, 31), D(2027, 6, 18),
           D(2027, 7, 5), D(2027, 9, 6), D(2027, 11, 25), D(2027, 12, 24)],
}
PUBLISHED_EARLY_CLOSES = {
    2025: [D(2025, 7, 3), D(2025, 11, 28), D(2025, 12, 24)],
    2026: [D(2026, 11, 27), D(2026, 12, 24)],
    2027: [D(2027, 11, 26)],
}


@pytest.mark.parametrize("year", sorted(PUBLISHED_HOLIDAYS))
def test_holidays_match_the_published_calendar(year: int) -> None:
    assert list(cal.holidays(year)) == PUBLISHED_HOLIDAYS[year]


@pytest.mark.parametrize("year", sorted(PUBLISHED_EARLY_CLOSES))
def test_early_closes_match_the_published_calendar(year: int) -> None:
    assert list(cal.early_closes(year)) == PUBLISHED_EARLY_CLOSES[year]


def test_easter_computus() -> None:
    assert [cal.easter(y) for y in (2024, 2025, 2026, 2027, 2038)] == [
        D(2024, 3, 31), D(2025, 4, 20), D(2026, 4, 5), D(2027, 3, 28), D(2038, 4, 25)]


def test_observed_rules() -> None:
    # New Year's Day on a Saturday (2022, 2028): not observed; the Friday before trades
    assert D(2021, 12, 31) not in cal.holidays(2021) and D(2022, 1, 1) not in cal.holidays(2022)
    assert cal.is_trading_day(D(2027, 12, 31))
    assert cal.holidays(2023)[D(2023, 1, 2)] == "New Year's Day"  # Sunday -> Monday
    assert D(2021, 6, 18) not in cal.holidays(2021)  # Juneteenth from 2022 only
    assert D(2021, 7, 2) not in cal.early_closes(2021)  # 4 July on a Sunday: no early close on the 2nd


def test_sessions_and_year_counts() -> None:
    assert len(cal.sessions(D(2025, 1, 1), D(2025, 12, 31))) == 250
    assert len(cal.sessions(D(2026, 1, 1), D(2026, 12, 31))) == 251
    s = cal.session(D(2026, 11, 27))
    assert s is not None and s.early_close and s.close.hour == 13 and s.after_hours_end.hour == 17
    assert cal.session(D(2026, 11, 26)) is None
    regular = cal.session(D(2026, 3, 9))  # the Monday after the clocks change: still 09:30 Eastern
    assert regular is not None and regular.open.isoformat() == "2026-03-09T09:30:00-04:00"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=EASTERN)  # type: ignore[misc,arg-type]


def test_the_clock() -> None:
    c = cal.clock(at(2026, 11, 25, 10, 0))  # Wednesday before Thanksgiving, open
    assert c.is_open and c.phase == "open"
    assert c.next_close == at(2026, 11, 25, 16, 0)
    assert c.next_open == at(2026, 11, 27, 9, 30)  # Thanksgiving skipped
    c = cal.clock(at(2026, 11, 27, 14, 0))  # after the early close
    assert not c.is_open and c.phase == "after_hours"
    assert c.next_open == at(2026, 11, 30, 9, 30) and c.next_close == at(2026, 11, 30, 16, 0)
    c = cal.clock(at(2026, 11, 30, 5, 0))
    assert c.phase == "pre_market" and c.next_open == at(2026, 11, 30, 9, 30)
    c = cal.clock(dt.datetime(2026, 12, 24, 17, 59, tzinfo=dt.UTC))  # 12:59 Eastern on Christmas Eve
    assert c.is_open and c.next_close == at(2026, 12, 24, 13, 0) and c.next_open == at(2026, 12, 28, 9, 30)
    assert c.record()["timestamp"] == "2026-12-24T12:59:00-05:00"
    assert cal.clock(at(2026, 12, 25, 10, 0)).phase == "closed"
    assert cal.clock_at_ns(int(at(2026, 11, 25, 10, 0).timestamp()) * 10**9).is_open
    with pytest.raises(ValueError):
        cal.clock(dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError):
        cal.holidays(1800)
