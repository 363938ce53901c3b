"""Trading status (pure): the ITCH events that gate trading, applied to the book row, and every form they leave in.

Rules of this module: everything that decides a symbol's or the market's status lives here (``apply_status``),
and both books (``Books`` message by message, ``KernelBooks`` on its side path for these rare messages) call
the same function at the same place in the stream, so they cannot disagree.

Per symbol (row fields of ``normalize.row``, so shared memory and every replica carry them like the quote):

- trading action (H): ``trading_state`` 'T' trading, 'H' halted, 'P' paused (LULD), 'Q' quotation only, with
  its reason ("LUDP", "T1", "IPO1", ...). Any other state is counted (``bad_trading_state``) and ignored.
- Reg SHO (Y): '0' no short sale price test, '1' in effect, '2' remains in effect.
- LULD auction collar (J): reference, upper and lower collar prices and the extension count of the paused
  symbol's reopening auction; cleared when the symbol trades again ('T'), so collars shown mean "paused now".
- IPO quoting period (K): release time (ITCH sends seconds since midnight US Eastern; kept here, like every
  time of the row, as Unix ns: ``midnight_ns`` added), qualifier 'A' anticipated / 'C' cancelled, price.
- operational halt (h): an operational halt on Nasdaq (market code 'Q', the market of this feed). Halts on BX
  or PSX do not stop trading here: counted (``operational_halt_elsewhere``), not applied.
- ``halted`` (the quote's flag, which the order API gates on) is: trading state H, P or Q, or an operational
  halt. A change of ``halted``, the trading state or its reason is a change of the quote (``seq`` + 1).
- ``status_seq``: + 1 for every status message applied to the symbol, even one that repeats the state: each
  one is an event the status channel sends. ``status_time``: the exchange time of the latest.

Market wide (``market``: an int64 array of ``MARKET_FIELDS``, locate-free): the latest system event (S: O start
of messages, S start of system hours, Q start of market hours, M end of market hours, E end of system hours,
C end of messages), ``market_open`` (between Q and M: orders are accepted only then), the market-wide circuit
breaker decline levels (V; ITCH sends ``Price (8)``, 8 implied decimals; kept with 4 like every price here,
exact for S&P 500 levels, which have 2) and the level breached (W), the exchange time and a version (+ 1 per
applied market message).

Characters are stored as their code point (0: none yet); the reason as its ASCII bytes, big-endian.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

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
from tickfan_proto import stream_pb2 as pb
from vocab.digits import parse_ascii_int
from vocab.prices import format_price, parse_price

from .row import BookRow

I64 = npt.NDArray[np.int64]

MAX_LOCATES = 65_536
_new = tuple.__new__  # a view straight from its tuple (no NamedTuple.__new__ frame): one per status event
# the market array: one int64 each
M_VERSION, M_EVENT, M_OPEN, M_LEVEL1, M_LEVEL2, M_LEVEL3, M_BREACHED, M_TIME = range(8)
MARKET_FIELDS = 8

TRADING_STATES = frozenset("THPQ")
_T = ord("T")
SYSTEM_EVENTS = frozenset("OSQMEC")
REG_SHO = frozenset("012")
MWCB_LEVELS = frozenset("123")
IPO_QUALIFIERS = frozenset("AC")
NASDAQ = "Q"  # the market code of this feed's own market (operational halts)
PRICE8_TO_PRICE4 = 10_000

STATUS_COUNTERS = ("status_events", "bad_status", "operational_halt_elsewhere")


def new_market() -> I64:
    return np.zeros(MARKET_FIELDS, np.int64)


def pack_reason(text: str) -> int:
    """Up to 4 ASCII characters, trailing spaces dropped (ITCH pads with them), as one big-endian integer; "" is 0.
    The batched kernel computes the same from the raw 4 bytes (``normalize.kernel_loop``)."""
    return int.from_bytes(text.encode("latin-1")[:4].rstrip(b" "), "big")


def unpack_reason(n: int) -> str:
    return n.to_bytes(4, "big").lstrip(b"\0").decode("latin-1").rstrip(" ") if n else ""


def _chr(n: int) -> str:
    return chr(n) if n else ""


def _ord(text: str) -> int:
    return ord(text[0]) if text else 0


class StatusBooks(BookRow, Protocol):
    """What ``apply_status`` needs of the books: the row, the market array, the counters, and the epoch ns of
    the session's Eastern midnight (added to each ITCH stamp stored: every time here is Unix ns)."""

    market: I64
    counters: dict[str, int]
    midnight_ns: int


# ---------------------------------------------------------------------------------------------- applying
def _symbol(books: StatusBooks, locate: int) -> bool:
    """Whether a symbol status message for ``locate`` may be applied (as ``Books`` judges a print's locate)."""
    if not 0 < locate < MAX_LOCATES:
        books.counters["unknown_locate"] += 1
        return False
    if not books.known.item(locate):
        books.counters["unknown_locate"] += 1
    return True


# (``.item`` reads a plain int or bool: cheaper than a numpy scalar and its comparisons; the opening has one
# trading action per symbol, so this path runs tens of thousands of times at the start of a session)
def _halted(books: StatusBooks, locate: int, ts: int) -> bool:
    """Recompute the quote's ``halted`` flag from the state and the operational halt; True if it changed (a
    change is a version of the quote)."""
    state = books.trading_state.item(locate)
    halted = (state != 0 and state != _T) or books.operational_halt.item(locate)
    if books.halted.item(locate) == halted:
        return False
    books.halted[locate] = halted
    books.seq[locate] += 1
    books.exchange_time[locate] = ts + books.midnight_ns
    return True


def _event(books: StatusBooks, locate: int, ts: int) -> None:
    books.status_seq[locate] += 1
    books.status_time[locate] = ts + books.midnight_ns
    books.counters["status_events"] += 1


def _trading_action(books: StatusBooks, m: TradingAction) -> None:
    if m.trading_state not in TRADING_STATES:
        books.counters["bad_trading_state"] += 1
        return
    locate = m.locate
    if not _symbol(books, locate):
        return
    # the quote's part (the batched kernel does this part itself, in its loop)
    state, reason = ord(m.trading_state), pack_reason(m.reason)
    quote_changed = books.trading_state.item(locate) != state or books.trading_reason.item(locate) != reason
    books.trading_state[locate] = state
    books.trading_reason[locate] = reason
    if not _halted(books, locate, m.timestamp) and quote_changed:
        books.seq[locate] += 1
        books.exchange_time[locate] = m.timestamp + books.midnight_ns
    _trading_status(books, m, state, reason)


def _trading_status(books: StatusBooks, m: TradingAction, state: int, reason: int) -> None:
    """A valid trading action's status part (what the kernel leaves to Python): the state again (idempotent;
    read with the event), collars cleared on 'T', the event."""
    locate = m.locate
    books.trading_state[locate] = state
    books.trading_reason[locate] = reason
    if state == _T:  # trading again: the reopening auction's collars are history
        for arr in (books.luld_reference, books.luld_upper, books.luld_lower, books.luld_extensions):
            arr[locate] = 0
    _event(books, locate, m.timestamp)


def _reg_sho(books: StatusBooks, m: RegSho) -> None:
    if m.action not in REG_SHO:
        books.counters["bad_status"] += 1
    elif _symbol(books, m.locate):
        books.reg_sho[m.locate] = ord(m.action)
        _event(books, m.locate, m.timestamp)


def _collar(books: StatusBooks, m: LuldAuctionCollar) -> None:
    if _symbol(books, m.locate):
        loc = m.locate
        books.luld_reference[loc] = m.reference_price
        books.luld_upper[loc] = m.upper_price
        books.luld_lower[loc] = m.lower_price
        books.luld_extensions[loc] = m.extension
        _event(books, loc, m.timestamp)


def _ipo(books: StatusBooks, m: IpoQuotingPeriod) -> None:
    if m.release_qualifier not in IPO_QUALIFIERS:
        books.counters["bad_status"] += 1
    elif _symbol(books, m.locate):
        loc = m.locate
        books.ipo_release[loc] = m.release_time * 1_000_000_000 + books.midnight_ns
        books.ipo_qualifier[loc] = ord(m.release_qualifier)
        books.ipo_price[loc] = m.ipo_price
        _event(books, loc, m.timestamp)


def _operational_halt(books: StatusBooks, m: OperationalHalt) -> None:
    if m.action not in ("H", "T"):
        books.counters["bad_status"] += 1
    elif m.market_code != NASDAQ:
        books.counters["operational_halt_elsewhere"] += 1
    elif _symbol(books, m.locate):
        books.operational_halt[m.locate] = m.action == "H"
        _halted(books, m.locate, m.timestamp)
        _event(books, m.locate, m.timestamp)


def _market_event(books: StatusBooks, ts: int) -> None:
    market = books.market
    market[M_VERSION] += 1
    market[M_TIME] = ts + books.midnight_ns
    books.counters["status_events"] += 1


def _system_event(books: StatusBooks, m: SystemEvent) -> None:
    books.counters["system_events"] += 1
    if m.event_code not in SYSTEM_EVENTS:
        books.counters["bad_status"] += 1
        return
    books.market[M_EVENT] = ord(m.event_code)
    books.market[M_OPEN] = m.event_code == "Q"
    _market_event(books, m.timestamp)


def _decline_levels(books: StatusBooks, m: MwcbDeclineLevel) -> None:
    market = books.market
    market[M_LEVEL1] = m.level1 // PRICE8_TO_PRICE4
    market[M_LEVEL2] = m.level2 // PRICE8_TO_PRICE4
    market[M_LEVEL3] = m.level3 // PRICE8_TO_PRICE4
    _market_event(books, m.timestamp)


def _breach(books: StatusBooks, m: MwcbStatus) -> None:
    if m.breached_level not in MWCB_LEVELS:
        books.counters["bad_status"] += 1
        return
    books.market[M_BREACHED] = ord(m.breached_level)
    _market_event(books, m.timestamp)


APPLY: dict[type, Callable[[StatusBooks, Any], None]] = {
    SystemEvent: _system_event,
    TradingAction: _trading_action,
    RegSho: _reg_sho,
    LuldAuctionCollar: _collar,
    IpoQuotingPeriod: _ipo,
    OperationalHalt: _operational_halt,
    MwcbDeclineLevel: _decline_levels,
    MwcbStatus: _breach,
}


def apply_status(books: StatusBooks, m: Message) -> None:
    """Apply one status message (one of ``ingest.messages.STATUS_MESSAGES``) to the row and the market."""
    APPLY[type(m)](books, m)


def apply_status_after_kernel(books: StatusBooks, m: Message) -> None:
    """What remains of a status message the batched kernel has passed: for a trading action, whose validity,
    counters and quote part the kernel handled, its status part; any other (the kernel only noted it), all."""
    if type(m) is TradingAction:
        _trading_status(books, m, ord(m.trading_state), pack_reason(m.reason))
    else:
        APPLY[type(m)](books, m)


# ---------------------------------------------------------------------------------------------- views
class SymbolStatusView(NamedTuple):
    """One locate's trading status, as the status channel, ``/v1/status`` and Redis carry it."""

    symbol: str | None
    version: int
    trading_state: str
    reason: str
    reg_sho: str
    luld_reference_price: int
    luld_upper_price: int
    luld_lower_price: int
    luld_extensions: int
    ipo_release_time_ns: int
    ipo_qualifier: str
    ipo_price: int
    operational_halt: bool
    event_time_ns: int

    def to_pb(self) -> pb.SymbolStatus:
        d = self._asdict()
        d["symbol"] = self.symbol or ""
        return pb.SymbolStatus(**d)

    def record(self) -> dict[str, Any]:
        """JSON-ready: prices as exact decimal strings (None when 0)."""
        rec = self._asdict()
        for name in _SYMBOL_PRICES:
            rec[name] = format_price(rec[name]) if rec[name] else None
        return rec

    def hash_fields(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in self.record().items()}

    def write(self, row: BookRow, locate: int) -> None:
        """Set ``locate``'s status fields (and the quote's halted flag they imply) to this view."""
        row.trading_state[locate] = _ord(self.trading_state)
        row.trading_reason[locate] = pack_reason(self.reason)
        row.reg_sho[locate] = _ord(self.reg_sho)
        row.luld_reference[locate] = self.luld_reference_price
        row.luld_upper[locate] = self.luld_upper_price
        row.luld_lower[locate] = self.luld_lower_price
        row.luld_extensions[locate] = self.luld_extensions
        row.ipo_release[locate] = self.ipo_release_time_ns
        row.ipo_qualifier[locate] = _ord(self.ipo_qualifier)
        row.ipo_price[locate] = self.ipo_price
        row.operational_halt[locate] = self.operational_halt
        row.status_time[locate] = self.event_time_ns
        row.status_seq[locate] = self.version

    @classmethod
    def from_pb(cls, s: pb.SymbolStatus) -> SymbolStatusView:
        return cls._make(getattr(s, name) for name in cls._fields)

    @classmethod
    def parse(cls, fields: Mapping[Any, Any]) -> SymbolStatusView:
        return cls._make(_parse(fields, _SYMBOL_KINDS, _SYMBOL_PRICES))


_SYMBOL_PRICES = ("luld_reference_price", "luld_upper_price", "luld_lower_price", "ipo_price")
_SYMBOL_KINDS = tuple(typing.get_type_hints(SymbolStatusView).items())


def read_status(books: BookRow, symbol_of: list[str | None], locate: int) -> SymbolStatusView:
    b = books
    state, reason, sho, qualifier = (b.trading_state.item(locate), b.trading_reason.item(locate),
                                     b.reg_sho.item(locate), b.ipo_qualifier.item(locate))
    return _new(SymbolStatusView, (
        symbol_of[locate], b.status_seq.item(locate), chr(state) if state else "",
        unpack_reason(reason) if reason else "", chr(sho) if sho else "", b.luld_reference.item(locate),
        b.luld_upper.item(locate), b.luld_lower.item(locate), b.luld_extensions.item(locate),
        b.ipo_release.item(locate), chr(qualifier) if qualifier else "", b.ipo_price.item(locate),
        b.operational_halt.item(locate), b.status_time.item(locate)))


class MarketStatusView(NamedTuple):
    """The market as a whole (see the module docstring)."""

    version: int
    system_event: str
    market_open: bool
    mwcb_level1: int
    mwcb_level2: int
    mwcb_level3: int
    mwcb_breached: str
    event_time_ns: int

    @classmethod
    def of(cls, market: I64) -> MarketStatusView:
        v = market.tolist()
        return cls(v[M_VERSION], _chr(v[M_EVENT]), bool(v[M_OPEN]), v[M_LEVEL1], v[M_LEVEL2], v[M_LEVEL3],
                   _chr(v[M_BREACHED]), v[M_TIME])

    @property
    def known(self) -> bool:
        """Whether any market message arrived (before one, the market's hours are not known)."""
        return self.version > 0

    @property
    def phase(self) -> str:
        """Where the feed's day is, from its system events: "pre_market" (start of system hours S, before Q),
        "open" (market hours, Q..M), "after_hours" (M, before the end of system hours E), else "closed"."""
        if self.market_open:
            return "open"
        return _PHASES.get(self.system_event, "closed")

    def to_pb(self) -> pb.MarketStatus:
        return pb.MarketStatus(**self._asdict())

    def record(self) -> dict[str, Any]:
        rec = self._asdict()
        for name in _MARKET_PRICES:
            rec[name] = format_price(rec[name]) if rec[name] else None
        return rec

    def hash_fields(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in self.record().items()}

    def write(self, market: I64) -> None:
        market[:] = (self.version, _ord(self.system_event), self.market_open, self.mwcb_level1, self.mwcb_level2,
                     self.mwcb_level3, _ord(self.mwcb_breached), self.event_time_ns)

    @classmethod
    def from_pb(cls, m: pb.MarketStatus) -> MarketStatusView:
        return cls._make(getattr(m, name) for name in cls._fields)

    @classmethod
    def parse(cls, fields: Mapping[Any, Any]) -> MarketStatusView:
        return cls._make(_parse(fields, _MARKET_KINDS, _MARKET_PRICES))


_PHASES = {"S": "pre_market", "M": "after_hours"}
_MARKET_PRICES = ("mwcb_level1", "mwcb_level2", "mwcb_level3")
_MARKET_KINDS = tuple(typing.get_type_hints(MarketStatusView).items())


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(fields: Mapping[Any, Any], kinds: tuple[tuple[str, Any], ...], prices: tuple[str, ...]) -> list[Any]:
    """A record or a Redis hash (str or bytes keys/values) as view values; missing or empty: absent.
    Raises ValueError on a malformed price or integer."""
    h = {_text(k): _text(v) for k, v in fields.items()}
    values: list[Any] = []
    for name, kind in kinds:
        t = h.get(name, "")
        if kind is bool:
            values.append(t in ("True", "true", "1"))
        elif kind is int:
            values.append((parse_price(t) if name in prices else parse_ascii_int(t)) if t else 0)
        elif name == "symbol":
            values.append(t or None)
        else:
            values.append(t)
    return values


# ---------------------------------------------------------------------------------------------- events
StatusEvent = tuple[int, "SymbolStatusView | MarketStatusView"]  # (locate, state after it); locate 0: the market


class StatusLog:
    """Every status event of a ``Books``, in order, bounded (``capacity``; the oldest fall off and a reader
    behind them is told how many it lost). Status events are a few a second, so a few thousand is minutes."""

    def __init__(self, capacity: int = 4_096) -> None:
        self._events: deque[StatusEvent] = deque(maxlen=capacity)
        self.total = 0

    def record(self, event: StatusEvent) -> None:
        self._events.append(event)
        self.total += 1

    def since(self, cursor: int) -> tuple[list[StatusEvent], int, int]:
        """Events recorded after ``cursor``: (events, new cursor, events lost to the bound)."""
        behind = self.total - cursor
        if behind <= 0:
            return [], self.total, 0
        kept = min(behind, len(self._events))
        return list(self._events)[len(self._events) - kept:], self.total, behind - kept


class StatusDiff:
    """``status_since`` for a replica (shared memory, Redis), which sees states, not events: each call gives one
    event per symbol whose ``status_seq`` moved (and the market, if its version did) since the last call, with the
    newest state; the version says how many events it covers. One reader (the fan-out's hub) per replica."""

    def __init__(self, size: int = MAX_LOCATES) -> None:
        self.seen: I64 = np.zeros(size, np.int64)
        self.market_seen = 0
        self.total = 0

    def since(self, books: BookRow, symbol_of: list[str | None], market: I64, high: int
              ) -> tuple[list[StatusEvent], int, int]:
        events: list[StatusEvent] = []
        if int(market[M_VERSION]) != self.market_seen:
            self.market_seen = int(market[M_VERSION])
            events.append((0, MarketStatusView.of(market)))
        now = books.status_seq[: high + 1]
        moved = np.flatnonzero(now != self.seen[: high + 1])
        if len(moved):
            self.seen[moved] = now[moved]
            events += [(loc, read_status(books, symbol_of, loc)) for loc in moved.tolist() if symbol_of[loc]]
        self.total += len(events)
        return events, self.total, 0


class StatusKeeper:
    """The status part of ``normalize.Books`` (a base class of it): applying a status message and recording the
    event it made, and reading the events back. ``Books`` provides the attributes annotated here."""

    market: I64
    symbol_of: list[str | None]
    status_seq: I64
    status_log: StatusLog

    @property
    def system_event(self) -> str:
        """The latest valid system event code ('O', 'S', 'Q', 'M', 'E', 'C'), "" before any."""
        code = int(self.market[M_EVENT])
        return chr(code) if code else ""

    @property
    def status_total(self) -> int:
        """Status events ever recorded (a cursor for ``status_since``)."""
        return self.status_log.total

    def status_since(self, cursor: int) -> tuple[list[StatusEvent], int, int]:
        """Status events after ``cursor``, each with the whole state after it: (events, new cursor, lost). The
        ticker is the symbol's name now (``KernelBooks`` names a batch's new symbols after the batch)."""
        events, cursor, lost = self.status_log.since(cursor)
        symbol_of = self.symbol_of
        named: list[StatusEvent] = [(loc, v._replace(symbol=symbol_of[loc]) if isinstance(v, SymbolStatusView) else v)
                                    for loc, v in events]
        return named, cursor, lost

    def _status(self, m: Message, apply: Callable[[Any, Message], None] = apply_status) -> None:
        """Apply a status message and record the event it made, if any (the status channel sends each one)."""
        loc = m.locate
        market = int(self.market[M_VERSION])
        symbol = self.status_seq.item(loc) if 0 < loc < MAX_LOCATES else 0
        apply(self, m)
        if int(self.market[M_VERSION]) != market:
            self.status_log.record((0, MarketStatusView.of(self.market)))
        elif 0 < loc < MAX_LOCATES and self.status_seq.item(loc) != symbol:
            self.status_log.record((loc, read_status(self, self.symbol_of, loc)))  # type: ignore[arg-type]


__all__ = ["MARKET_FIELDS", "STATUS_COUNTERS", "MarketStatusView", "StatusDiff", "StatusEvent", "StatusKeeper",
           "StatusLog", "SymbolStatusView", "apply_status", "new_market", "read_status"]
