"""The venue's day from the calendar: session events due, in order, whatever the gaps between calls."""

from __future__ import annotations

import datetime as dt

from venue.schedule import CalendarSchedule
from vocab.clock import EASTERN


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=EASTERN)  # type: ignore[misc,arg-type]


def test_a_day_minute_by_minute_and_across_a_holiday() -> None:
    s = CalendarSchedule(at(2026, 11, 25, 3, 0))  # the Wednesday before Thanksgiving
    seen: list[tuple[str, str]] = []
    t = at(2026, 11, 25, 3, 0)
    while t < at(2026, 11, 28, 0, 0):
        seen += [(t.strftime("%d %H:%M"), e) for e in s.due(t)]
        t += dt.timedelta(minutes=1)
    assert seen == [("25 04:00", "premarket"), ("25 09:30", "open"), ("25 16:00", "close"),
                    ("25 20:00", "rollover"),  # Thanksgiving: nothing
                    ("27 04:00", "premarket"), ("27 09:30", "open"), ("27 13:00", "close"),  # the early close
                    ("27 17:00", "rollover")]


def test_a_process_asleep_through_the_session_gets_every_event() -> None:
    s = CalendarSchedule(at(2026, 11, 24, 8, 0))
    assert s.due(at(2026, 11, 24, 10, 0)) == ["open"]
    assert s.due(at(2026, 11, 25, 5, 0)) == ["close", "rollover", "premarket"]
    assert s.due(at(2026, 11, 25, 5, 1)) == []


def test_the_simulator_opens_in_a_phase_and_moves_on_when_told() -> None:
    from ingest.messages import SystemEvent
    from venue.simulator import ExchangeSimulator

    sim = ExchangeSimulator(5, seed=1, clock=lambda: 4 * 3600 * 10**9, opening_phase="pre_market")
    codes = [m.event_code for m in sim.generate(100) if isinstance(m, SystemEvent)]  # the opening, and more
    assert codes == ["O", "S"]
    sim.session_event("open")
    sim.session_event("close")
    assert [m.event_code for m in sim.generate(20) if isinstance(m, SystemEvent)] == ["Q", "M"]
    assert sim.status.system_event == "M"
