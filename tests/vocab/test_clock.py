"""The ITCH clock: ns since midnight US Eastern of the session's date <-> ns since the Unix epoch."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.clock import (
    NS_PER_DAY,
    dated_session,
    eastern_date,
    eastern_midnight_ns,
    epoch_to_itch,
    itch_now,
    itch_to_epoch_ns,
    parse_date,
    session_date,
    today_eastern,
)

HOUR = 3_600 * 1_000_000_000


def utc_ns(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def test_market_open_before_and_after_spring_forward() -> None:
    # Friday 2026-03-06 is EST (UTC-5), Monday 2026-03-09 is EDT (UTC-4): 09:30 Eastern both days
    open_itch = 9 * HOUR + 30 * 60 * 1_000_000_000
    assert itch_to_epoch_ns(open_itch, dt.date(2026, 3, 6)) == utc_ns(2026, 3, 6, 14, 30)
    assert itch_to_epoch_ns(open_itch, dt.date(2026, 3, 9)) == utc_ns(2026, 3, 9, 13, 30)


def test_market_close_before_and_after_fall_back() -> None:
    close_itch = 16 * HOUR
    assert itch_to_epoch_ns(close_itch, dt.date(2026, 10, 30)) == utc_ns(2026, 10, 30, 20, 0)  # EDT
    assert itch_to_epoch_ns(close_itch, dt.date(2026, 11, 2)) == utc_ns(2026, 11, 2, 21, 0)  # EST


def test_the_change_days_themselves_count_elapsed_time() -> None:
    # 2026-03-08 is 23 hours long, 2026-11-01 25 hours: midnight is EST/EDT respectively
    assert eastern_midnight_ns(dt.date(2026, 3, 8)) == utc_ns(2026, 3, 8, 5, 0)
    assert eastern_midnight_ns(dt.date(2026, 3, 9)) - eastern_midnight_ns(dt.date(2026, 3, 8)) == 23 * HOUR
    assert eastern_midnight_ns(dt.date(2026, 11, 1)) == utc_ns(2026, 11, 1, 4, 0)
    assert eastern_midnight_ns(dt.date(2026, 11, 2)) - eastern_midnight_ns(dt.date(2026, 11, 1)) == 25 * HOUR
    # elapsed: 3 h after midnight EST on spring-forward day is 04:00 EDT = 08:00 UTC
    assert itch_to_epoch_ns(3 * HOUR, dt.date(2026, 3, 8)) == utc_ns(2026, 3, 8, 8, 0)
    # the 25th hour of fall-back day still belongs to that day
    assert epoch_to_itch(utc_ns(2026, 11, 2, 4, 30)) == (dt.date(2026, 11, 1), 24 * HOUR + 30 * 60 * 10**9)


def test_a_date_far_from_today() -> None:
    # 1999-07-01: EDT; 2061-01-03: EST (rules as they stand)
    assert itch_to_epoch_ns(9 * HOUR, dt.date(1999, 7, 1)) == utc_ns(1999, 7, 1, 13, 0)
    assert itch_to_epoch_ns(9 * HOUR, dt.date(2061, 1, 3)) == utc_ns(2061, 1, 3, 14, 0)
    assert epoch_to_itch(utc_ns(1999, 7, 1, 13, 0) + 7) == (dt.date(1999, 7, 1), 9 * HOUR + 7)


def test_eastern_date_is_not_the_utc_date_in_the_evening() -> None:
    assert eastern_date(utc_ns(2026, 11, 26, 3, 0)) == dt.date(2026, 11, 25)


@given(st.dates(dt.date(1990, 1, 1), dt.date(2080, 12, 31)), st.integers(0, NS_PER_DAY - 1))
def test_round_trip(day: dt.date, itch_ns: int) -> None:
    epoch = itch_to_epoch_ns(itch_ns, day)
    back_day, back_ns = epoch_to_itch(epoch)
    # a 23-hour day's last hour belongs to the next date; otherwise the date and the count come back
    assert itch_to_epoch_ns(back_ns, back_day) == epoch
    if itch_ns < 23 * HOUR:
        assert (back_day, back_ns) == (day, itch_ns)


def test_itch_now_is_epoch_now_on_the_session_dates_clock() -> None:
    day = today_eastern()
    before = time.time_ns()
    stamp = itch_now(day)
    after = time.time_ns()
    assert before <= itch_to_epoch_ns(stamp, day) <= after
    # a session dated yesterday keeps counting past midnight: a day more, still inside ITCH's 6 bytes
    assert itch_now(day - dt.timedelta(days=1)) - stamp >= 23 * HOUR and itch_now(day) < 1 << 48


def test_session_names_carry_their_date() -> None:
    assert dated_session(dt.date(2019, 1, 30)) == "20190130RP"
    assert session_date("20190130RP") == dt.date(2019, 1, 30)
    # a live feed's names carry none: not 10 characters, not a date, or a year out of range
    for name in ("TICKFAN001", "REPLAY0001", "000004352B", "20191330RP", "2019013RP", "18990130RP", "２０１９0130RP"):
        assert session_date(name) is None, name
    with pytest.raises(ValueError):
        dated_session(dt.date(2019, 1, 30), "R")


def test_parse_date_names_a_bad_one() -> None:
    assert parse_date("2019-01-30") == dt.date(2019, 1, 30)
    with pytest.raises(ValueError, match="01/30/2019"):
        parse_date("01/30/2019")
