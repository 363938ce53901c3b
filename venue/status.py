"""The simulated exchange's trading status (pure): LULD pauses, the other status events, and the session's close.

``StatusScript`` is driven by the simulator's own clock (the ``ts`` it stamps messages with, ITCH nanoseconds
since midnight), so it is as deterministic as the clock it is given:

- LULD pauses (``luld_every`` seconds apart, the first half that after the start, each ``luld_pause`` seconds
  long, at most 10; one symbol at a time, taking ``luld_symbols`` in turn): as Nasdaq sends them, a Stock
  Trading Action 'P' with reason "LUDP", then the LULD Auction Collar of the reopening auction (reference price
  the symbol's mid, collars 5% either side, extension 0); at the end, trading resumes with 'T'. While paused the
  simulator's book does not trade.
- The other status events, one every ``events_every`` seconds, in turn: Reg SHO (a short sale price test in
  effect on a symbol, and lifted again the next time round), an IPO quoting period update (anticipated, ten
  minutes on), an operational halt on Nasdaq and its end (the next time round), the market-wide circuit breaker
  decline levels, and (``breach``) a level 1 breach.
- ``close_market`` queues the end of market hours (S 'M'); ``end_session`` the end of system hours and of
  messages (S 'E', 'C'). The session itself opens at the simulator's start (S 'O', 'S', 'Q').
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.messages import (
    IpoQuotingPeriod,
    LuldAuctionCollar,
    Message,
    MwcbDeclineLevel,
    MwcbStatus,
    OperationalHalt,
    RegSho,
    SystemEvent,
    TradingAction,
)

if TYPE_CHECKING:
    from .simulator import ExchangeSimulator

NS = 1_000_000_000
MAX_LULD_PAUSE = 10.0  # seconds: the demo's promise (a real LULD pause lasts five minutes or more)
SP500 = 5_000_00000000  # the simulated S&P 500 at 5,000.00, ITCH Price (8)
NEVER = 1 << 62  # a resume "draw" the simulator never reaches: the script resumes the symbol itself


@dataclass(frozen=True)
class StatusConfig:
    """How often the simulator emits status events; None: never."""

    luld_every: float | None = None  # seconds from the start of one LULD pause to the next
    luld_pause: float = 5.0  # seconds a LULD pause lasts
    luld_symbols: tuple[str, ...] = ("TSLA", "NVDA")
    events_every: float | None = None  # seconds between the other status events (Reg SHO, IPO, op halt, MWCB)
    breach: bool = False  # include a market-wide circuit breaker breach (W) among them

    def __post_init__(self) -> None:
        if self.luld_every is not None:
            if self.luld_every <= 0:
                raise ValueError("the LULD pause interval must be positive")
            if not 0 < self.luld_pause <= MAX_LULD_PAUSE or self.luld_pause >= self.luld_every:
                raise ValueError(f"a LULD pause lasts more than 0 and at most {MAX_LULD_PAUSE:g} s, and less than "
                                 f"the interval between pauses ({self.luld_every:g} s)")
        if self.events_every is not None and self.events_every <= 0:
            raise ValueError("the status event interval must be positive")


DEMO = StatusConfig(luld_every=45.0, luld_pause=8.0, events_every=20.0)


class StatusScript:
    """What status messages are due at a time, given the simulator's state (see the module docstring)."""

    def __init__(self, config: StatusConfig, sim: ExchangeSimulator) -> None:
        self.config = config
        self.sim = sim
        # its own generator: status events come at times, not at message counts, so drawing from the
        # simulator's would make the rest of the stream depend on the clock
        self.rand = random.Random(0x57A7).random
        index = {name: i + 1 for i, name in enumerate(sim.tickers)}
        self.luld_locates = [index[s] for s in config.luld_symbols if s in index]
        self._start: int | None = None
        # seconds since the start: the first pause comes half an interval in (a calm opening), then every interval
        self._next_luld = config.luld_every / 2 if config.luld_every is not None else 0.0
        self._next_event = 0.0
        self._luld_turn = 0
        self._event_turn = 0
        self.paused: tuple[int, float] | None = None  # (locate, seconds since the start it resumes at)
        self.collar: LuldAuctionCollar | None = None  # the paused symbol's auction collar
        self.reg_sho: dict[int, str] = {}  # locate -> its latest Reg SHO action ('1' in effect, '0' lifted)
        self.operational_halt: int | None = None
        self.ipo: dict[int, tuple[int, str, int]] = {}
        self.levels: tuple[int, int, int] | None = None
        self.breached = ""
        self.system_event = ""
        self._queued: list[Message] = []

    def close_market(self) -> None:
        self.system("M")

    def system(self, code: str) -> None:
        """A system event (S) with the next messages: the venue's day moving on (``venue.schedule``)."""
        self._queued.append(SystemEvent(0, 0, 0, code))

    def end_session(self) -> None:
        self._queued += [SystemEvent(0, 0, 0, "E"), SystemEvent(0, 0, 0, "C")]

    def requeue(self, messages: list[Message]) -> None:
        """Messages that were due but did not fit in the caller's batch: first out next time."""
        self._queued[:0] = messages

    def due(self, ts: int) -> list[Message]:
        """The status messages due at ``ts`` (stamped ``ts``)."""
        if self._start is None:
            self._start = ts
        now = (ts - self._start) / NS
        out = [m._replace(timestamp=ts) for m in self._queued]
        self._queued.clear()
        cfg = self.config
        sim = self.sim
        if self.paused is not None and now >= self.paused[1]:
            loc = self.paused[0]
            self.paused = None
            sim.halted.pop(loc, None)
            out.append(TradingAction(loc, 0, ts, sim.tickers[loc - 1], "T", " ", ""))
        if cfg.luld_every is not None and self.luld_locates and now >= self._next_luld and self.paused is None:
            self._next_luld = now + cfg.luld_every
            loc = self.luld_locates[self._luld_turn % len(self.luld_locates)]
            self._luld_turn += 1
            if loc not in sim.halted:  # a name already halted for news is not paused on top
                self.paused = (loc, now + cfg.luld_pause)
                sim.halted[loc] = NEVER
                out += self._pause(loc, ts)
        if cfg.events_every is not None and now >= self._next_event:
            self._next_event = now + cfg.events_every
            out += self._other(ts)
        for m in out:
            if isinstance(m, SystemEvent):
                self.system_event = m.event_code
        return out

    def _pause(self, loc: int, ts: int) -> list[Message]:
        name = self.sim.tickers[loc - 1]
        ref = self.sim.mid[loc - 1]
        band = ref // 20 // 100 * 100  # 5%, in whole cents
        self.collar = LuldAuctionCollar(loc, 0, ts, name, ref, ref + band, max(100, ref - band), 0)
        return [TradingAction(loc, 0, ts, name, "P", " ", "LUDP"), self.collar]

    def _pick(self) -> int:
        """A symbol for a status event: not the LULD names."""
        sim = self.sim
        n = len(sim.tickers)
        for _ in range(8):
            loc = 1 + int(self.rand() * n)
            if loc not in self.luld_locates:
                return loc
        return n

    def _other(self, ts: int) -> list[Message]:
        kinds = 5 if self.config.breach else 4
        turn = self._event_turn % kinds
        self._event_turn += 1
        sim = self.sim
        if turn == 0:  # Reg SHO: a price test in effect, or the last one lifted
            active = [loc for loc, action in self.reg_sho.items() if action == "1"]
            if active:
                self.reg_sho[active[0]] = "0"
                return [RegSho(active[0], 0, ts, sim.tickers[active[0] - 1], "0")]
            loc = self._pick()
            self.reg_sho[loc] = "1"
            return [RegSho(loc, 0, ts, sim.tickers[loc - 1], "1")]
        if turn == 1:  # IPO quoting period: release anticipated ten minutes from now
            loc = self._pick()
            release = (ts // NS + 600) % 86_400
            self.ipo[loc] = (release, "A", sim.mid[loc - 1])
            return [IpoQuotingPeriod(loc, 0, ts, sim.tickers[loc - 1], release, "A", sim.mid[loc - 1])]
        if turn == 2:  # an operational halt on Nasdaq, lifted the next time round
            if self.operational_halt is not None:
                loc, self.operational_halt = self.operational_halt, None
                return [OperationalHalt(loc, 0, ts, sim.tickers[loc - 1], "Q", "T")]
            loc = self._pick()
            self.operational_halt = loc
            return [OperationalHalt(loc, 0, ts, sim.tickers[loc - 1], "Q", "H")]
        if turn == 3:  # the day's circuit breaker levels: 7%, 13% and 20% below the S&P 500
            self.levels = (SP500 * 93 // 100, SP500 * 87 // 100, SP500 * 80 // 100)
            return [MwcbDeclineLevel(0, 0, ts, *self.levels)]
        self.breached = "1"
        return [MwcbStatus(0, 0, ts, "1")]

    def snapshot(self, ts: int) -> list[Message]:
        """The status a rebuilding consumer needs beyond each symbol's trading action (GLIMPSE carries these)."""
        sim = self.sim
        out: list[Message] = []
        if self.system_event:
            out.append(SystemEvent(0, 0, ts, self.system_event))
        if self.levels is not None:
            out.append(MwcbDeclineLevel(0, 0, ts, *self.levels))
        if self.breached:
            out.append(MwcbStatus(0, 0, ts, self.breached))
        for loc, action in self.reg_sho.items():
            out.append(RegSho(loc, 0, ts, sim.tickers[loc - 1], action))
        for loc, (release, qualifier, price) in self.ipo.items():
            out.append(IpoQuotingPeriod(loc, 0, ts, sim.tickers[loc - 1], release, qualifier, price))
        if self.operational_halt is not None:
            loc = self.operational_halt
            out.append(OperationalHalt(loc, 0, ts, sim.tickers[loc - 1], "Q", "H"))
        if self.paused is not None and self.collar is not None:
            out.append(self.collar._replace(timestamp=ts))  # (the 'P' is the symbol's trading action)
        return out
