"""The simulated venue's day, from the exchange calendar (pure): which session events are due at an instant.

A venue's day is four phases (``vocab.calendar``): closed, pre-market (04:00), the regular session (09:30 to
16:00, 13:00 on an early close), after hours (to 20:00, 17:00 after an early close); holidays and weekends are
closed all day. Moving between them is a *session event*, and each event is what both halves of the simulated
venue do about it:

======== ===================================== ===================================================
event    the feed (ITCH system events, S 'x')  the market maker (``MarketMaker.session_event``)
======== ===================================== ===================================================
premarket S (start of system hours)            nothing
open     Q (start of market hours)             the opening cross: OPG orders fill
close    M (end of market hours)               the closing cross: at-the-close orders fill (first)
rollover E (end of system hours)               open day orders expire; gtc orders rest on
======== ===================================== ===================================================

``CalendarSchedule.due(now)`` gives the events between the last call and ``now`` in order (a process that was
asleep through several gets them all, so a day is never skipped half done). The same events can be driven on
demand (``tickfan venue EVENT``), which is how tests and the demo show them without waiting for New York.
"""

from __future__ import annotations

import datetime as dt

from vocab import calendar
from vocab.clock import EASTERN

EVENTS = ("premarket", "open", "close", "rollover")
SYSTEM_EVENTS: dict[str, str] = {"premarket": "S", "open": "Q", "close": "M", "rollover": "E"}
# the system events a feed starting in a phase opens with (start of messages first)
OPENING: dict[str, tuple[str, ...]] = {"closed": ("O",), "pre_market": ("O", "S"), "open": ("O", "S", "Q"),
                                       "after_hours": ("O", "S", "M")}
_ORDER = {"closed": 0, "pre_market": 1, "open": 2, "after_hours": 3}
_INTO = {"pre_market": "premarket", "open": "open", "after_hours": "close", "closed": "rollover"}


class CalendarSchedule:
    """Session events due by the calendar (see the module docstring); time is passed in."""

    def __init__(self, start: dt.datetime) -> None:
        self.phase = calendar.clock(start).phase
        self.day = start.astimezone(EASTERN).date()

    def due(self, now: dt.datetime) -> list[str]:
        """The events from the last call to ``now``, in order; the schedule's phase is then now's."""
        out: list[str] = []
        here = now.astimezone(EASTERN)
        target = calendar.clock(here).phase
        if here.date() != self.day:
            # the day turned: finish the old one (through after hours to closed), then start the new one
            if self.phase != "closed":
                out += [_INTO[p] for p in ("after_hours", "closed") if _ORDER[p] > _ORDER[self.phase]
                        or p == "closed"]
            self.phase, self.day = "closed", here.date()
        if target != self.phase:
            if _ORDER[target] > _ORDER[self.phase]:
                out += [_INTO[p] for p in ("pre_market", "open", "after_hours")
                        if _ORDER[self.phase] < _ORDER[p] <= _ORDER[target]]
            else:  # back to closed within the day (the end of after hours)
                out.append("rollover")
            self.phase = target
        return out
