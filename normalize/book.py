"""Books for every symbol (pure): decoded ITCH 5.0 order events in, top of book and trade prints out.

Published state lives in numpy arrays indexed by stock locate, never in per-symbol objects, so consumers
(fan-out, snapshots, later shared memory) read it by locate with no translation and diff it with numpy.
The hot path writes single elements through ``memoryview``s of those arrays: the same memory, about twice
as fast per element as numpy's ``__setitem__``, and reads come back as plain ints.

Working state behind it:

- live orders: ``order reference -> (side key, signed price, remaining shares)``, a dict of tuples. Measured
  on the add/delete cycle: tuples within 10% of lists (a little faster) and 1.8x faster than slot indices
  into numpy columns (a free-slot list plus numpy element access costs more than the tuple). Tuples of
  ints also drop out of the cyclic collector once it has seen them; lists never do. A partial fill (rare
  next to adds and deletes) replaces its tuple. The side key is ``locate << 1 | side``.
- price levels per side key: ``{signed price: shares}`` plus the signed prices in ascending order. Bid
  prices are stored negated, so on both sides the best level is element 0 of the ladder: when it empties
  the next best is simply the new element 0, and depth is a slice (``levels``). Insertion is ``bisect``
  into a list of a few dozen prices.

Versions: a symbol's ``seq`` goes up by exactly one for each message that changes any of its published
fields (bid/ask price and size, last price and size, volume, halted, stale, and the name when its directory
entry arrives). An add or cancel away from the inside changes no published field and no version.
``depth_seq`` goes up by one for each message that changes any of its price levels (read them with
``levels``), at any depth.

Decisions on ITCH content (each one counted, never raised):

- ``over_execution``: an execute (E/C) or cancel (X) for more shares than the order has left. Our record of
  the order is what is wrong (the exchange executed or cancelled those shares), so the order is removed
  and, for executions, the print carries the exchange's share count. Clamping would hide the fault.
- ``unknown_locate``: a locate with no stock directory entry is still applied, and counted, on each
  message: the directory can arrive late (a handler joining mid-session) and the book must be right then.
  Such a symbol has no name, so no client can subscribe to it and nothing about it is sent. A locate that
  cannot be a stock (0, negative, or >= MAX_LOCATES) is dropped.
- Broken trades (B) are counted, not reversed: a break names only a match number, and the print it voids
  may be older than the bounded ring, so any reversal would depend on ring size and timing. Volume here
  is printed volume; ``counters['broken_trades']`` says how far it may overstate the official figure.
  Each break is also kept, as it came, in a bounded ring of its own (``breaks_since``: locate, time and
  match number, price and size 0) for consumers that do reverse prints (``normalize.bars``).
- Trade context: every print gets the symbol's next ``trade_seq`` (``Books.trade_seq[locate]``: 1, 2, 3, ...
  with no gap and no reuse for the life of this ``Books``, which is one feed session; a snapshot ``rebuild``
  keeps it, since the prints inside a skipped hole were never seen here and so were never numbered: a
  consecutive ``trade_seq`` says no print these books applied was lost on the way to a client, and the stale
  flag says when the books themselves missed some). The aggressor is known for E and C executions (the
  resting order's side is ours, the aggressor took the other side); a P trade's Buy/Sell Indicator is always
  'B' since 2014 (ITCH 5.0 spec), so its aggressor is unknown, like a cross's. A Q cross carries its Cross
  Type (open, close, halt/IPO, extended). Non-printable executions (C with Printable 'N') are not prints: the
  spec says they are part of a cross whose bulk Q print carries them, and counting both would count those
  shares twice (time-and-sales and volume must ignore them), so they never reach the ring or the trades
  channel and take no ``trade_seq``; ``printable`` is true on every Nasdaq print sent.
- Times: the row's ``exchange_time`` (and the prints' and breaks') is nanoseconds since the Unix epoch, the
  one clock of every ``*_time_ns`` a client sees: each ITCH stamp (ns since midnight US Eastern) plus the
  session date's Eastern midnight (``vocab.clock``), one integer add where the stamp is stored. Books given
  no session date keep ITCH's own count (``midnight_ns`` 0: tests and tools with no date).
- Trading status (S, H, Y, J, K, h, V, W): applied by ``normalize.status.apply_status`` (its docstring has
  the rules). 'H' halted, 'P' paused and 'Q' quotation only set ``halted``, as does an operational halt (no
  trade can happen, so the quote is not a tradable price); the trading state and its reason travel with the
  quote. The market-wide state (system event, market hours, circuit breakers) is ``market``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.messages import (
    STATUS_MESSAGES,
    AddOrder,
    BrokenTrade,
    CrossTrade,
    Message,
    OrderCancel,
    OrderDelete,
    OrderExecuted,
    OrderExecutedWithPrice,
    OrderReplace,
    StockDirectory,
    Trade,
)
from vocab.clock import eastern_midnight_ns

from .row import BOOL, I64, BookRow, bind_row, new_row
from .status import MAX_LOCATES as _MAX_LOCATES
from .status import STATUS_COUNTERS, StatusKeeper, StatusLog, new_market
from .trades import AGGRESSOR_BUY, AGGRESSOR_SELL, PRINTABLE, TradePrints, TradeRing, flags_of

__all__ = ["ASK", "BID", "MAX_LOCATES", "Books", "TradePrints"]

MAX_LOCATES = _MAX_LOCATES  # one definition: normalize.status (imported here first by every user)
# a cross's shares are 8 bytes on the wire: beyond 4 bytes (every other print's width) is hostile, and would
# overflow the int64 volume it is added to
MAX_CROSS_SHARES = 0xFFFF_FFFF
BID, ASK = 0, 1
# a print's flags by the resting order's side (BID, ASK): the aggressor is the other side
_AGGRESSED = (flags_of(AGGRESSOR_SELL), flags_of(AGGRESSOR_BUY))

COUNTER_NAMES = (
    "messages",             # every message handed to apply/apply_batch
    "unknown_order",        # E/C/X/D/U for an order reference that is not live
    "duplicate_order_ref",  # A/F/U reusing a live order reference
    "over_execution",       # E/C/X for more shares than remain (the order is removed)
    "unknown_locate",       # no directory entry (applied) or impossible locate (dropped)
    "bad_side",             # side other than 'B'/'S'
    "bad_shares",           # non-positive share count on an add, replace, execute, cancel or trade
    "bad_price",            # non-positive price on an add, replace or print (0 means "no level"/"no trade")
    "bad_trading_state",    # H with a state other than T/H/P/Q
    "unknown_message",      # not an ingest.messages type
    "broken_trades",
    "system_events",
    *STATUS_COUNTERS,
)

# An order: (side key (locate << 1 | side), signed price (negated for bids), remaining shares)
Order = tuple[int, int, int]
# A side: ({signed price: shares}, ascending signed prices) — best level first
Side = tuple[dict[int, int], list[int]]


class _Dispatch(dict[type, Callable[[Any], None]]):
    """Message class -> handler; a class nobody handles is counted rather than raising KeyError."""

    def __init__(self, handlers: dict[type, Callable[[Any], None]], counters: dict[str, int]) -> None:
        super().__init__(handlers)
        self._counters = counters

    def __missing__(self, key: type) -> Callable[[Any], None]:
        return self._unknown

    def _unknown(self, msg: object) -> None:
        self._counters["unknown_message"] += 1


def _int64(match: int) -> int:
    """A match number is an 8-byte identifier: kept as int64, wrapped as the kernel's columns keep it."""
    return match - (1 << 64) if match >= 1 << 63 else match


class Books(StatusKeeper, BookRow):
    """Top of book for every locate, built from order-level ITCH state. See the module docstring."""

    def __init__(self, *, trade_capacity: int = 65_536, break_capacity: int = 4_096,
                 arrays: Mapping[str, npt.NDArray[np.generic]] | None = None,
                 market: I64 | None = None, session_date: dt.date | None = None) -> None:
        """``arrays``: publish into these row arrays (by field name, ``MAX_LOCATES`` long), e.g. a shared-memory
        block's (``normalize.replicas.shm.ShmPublisher``); by default the arrays are this object's own. ``market``:
        likewise, the market-wide status array (``normalize.status``). ``session_date``: the trading day the
        feed's ITCH stamps count from (see ``set_session_date``)."""
        self.session_date: dt.date | None = None
        self.midnight_ns = 0  # added to every ITCH stamp stored: epoch ns of the session's Eastern midnight
        self._t0 = 0
        if session_date is not None:
            self.set_session_date(session_date)
        n = MAX_LOCATES
        bind_row(self, arrays if arrays is not None else new_row(n))
        self.market: I64 = market if market is not None else new_market()
        # the locates this Books applies (its directory entries); when the arrays are shared, other writers
        # own the other rows, so whole-book operations (stale, rebuild) must touch only these
        self._mine: BOOL = np.zeros(n, np.bool_)
        self.symbol_of: list[str | None] = [None] * n
        self.locate_of: dict[str, int] = {}
        self.high_locate = 0
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._trades = TradeRing(trade_capacity)
        # names this session's trade_seq numbering (a resume token from another session cannot be replayed here)
        self.session_epoch = secrets.randbits(63)
        # per symbol: the last print's trade_seq (its session-wide print count; a rebuild keeps it)
        self.trade_seq: npt.NDArray[np.int64] = np.zeros(n, np.int64)
        self._tseq = self.trade_seq.data
        self._breaks = TradeRing(break_capacity)  # broken trades as they came (price and size 0)
        self.status_log = StatusLog()
        # the same memory as the arrays above, for single-element access on the hot path
        self._bp = self.bid_price.data
        self._bs = self.bid_size.data
        self._ap = self.ask_price.data
        self._as = self.ask_size.data
        self._lp = self.last_price.data
        self._ls = self.last_size.data
        self._vol = self.volume.data
        self._et = self.exchange_time.data
        self._seq = self.seq.data
        self._dseq = self.depth_seq.data
        self._known = self.known.data
        self._halted = self.halted.data
        # working state
        # live orders (read-only outside this class; encoded as ``Order``: use ``order``/``live_orders``)
        self.orders: dict[int, Order] = {}
        self._sides: dict[int, Side] = {}
        self._dispatch = _Dispatch({
            AddOrder: self._add,
            OrderDelete: self._delete,
            OrderReplace: self._replace,
            OrderExecuted: self._executed,
            OrderCancel: self._cancel,
            OrderExecutedWithPrice: self._executed_with_price,
            Trade: self._trade,
            CrossTrade: self._cross,
            BrokenTrade: self._broken,
            StockDirectory: self._directory,
            **{kind: self._status for kind in STATUS_MESSAGES},
        }, self.counters)

    def set_session_date(self, day: dt.date) -> None:
        """Count ITCH stamps from midnight US Eastern of ``day`` from now on: every time stored is then Unix
        epoch ns. Set before the first message (a node does, from its configuration or the session's name)."""
        self.session_date = day
        self.midnight_ns = self._t0 = eastern_midnight_ns(day)

    # ------------------------------------------------------------------ entry points
    def apply(self, msg: Message) -> None:
        self.counters["messages"] += 1
        self._dispatch[type(msg)](msg)

    def apply_batch(self, msgs: Sequence[Message]) -> None:
        """Apply one packet's messages in order (the feed handler's sink)."""
        dispatch = self._dispatch
        for msg in msgs:
            dispatch[type(msg)](msg)
        self.counters["messages"] += len(msgs)

    # ------------------------------------------------------------------ reading
    @property
    def trades_total(self) -> int:
        """Trade prints ever recorded (a cursor for ``trades_since``)."""
        return self._trades.total

    @property
    def trade_capacity(self) -> int:
        return self._trades.capacity

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        """Trade prints recorded after ``cursor``: (prints, new cursor, prints lost to the ring's bound)."""
        return self._trades.since(cursor)

    @property
    def breaks_total(self) -> int:
        """Broken trades ever recorded (a cursor for ``breaks_since``)."""
        return self._breaks.total

    def breaks_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        """Broken-trade messages recorded after ``cursor`` (locate, exchange_time, match_number; price, size
        and seq 0): (breaks, new cursor, breaks lost to the ring's bound)."""
        return self._breaks.since(cursor)

    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        """The best ``n`` price levels of one side (BID or ASK) as (price, shares), best first."""
        book = self._sides.get(locate << 1 | side) if side in (BID, ASK) and n > 0 else None
        if book is None:
            return []
        lv, ladder = book
        sign = 1 if side == ASK else -1
        return [(sign * p, lv[p]) for p in ladder[:n]]

    def order(self, order_ref: int) -> tuple[int, int, int, int] | None:
        """A live order as (locate, side, price, remaining shares), or None."""
        o = self.orders.get(order_ref)
        if o is None:
            return None
        key, sp, shares = o
        return key >> 1, key & 1, abs(sp), shares

    def live_orders(self) -> dict[int, tuple[int, int, int, int]]:
        """Every live order by reference (a copy; for snapshots and tests, not the hot path)."""
        return {ref: (k >> 1, k & 1, abs(sp), n) for ref, (k, sp, n) in self.orders.items()}

    @property
    def order_count(self) -> int:
        return len(self.orders)

    # ------------------------------------------------------------------ feed health
    def set_stale_all(self, stale: bool) -> None:
        """Flag every known symbol stale (a feed hole was skipped) or fresh again (rebuilt), as a new version.

        A skipped hole may have held any symbol's messages, so all are flagged: clients see it in their next
        update and snapshot instead of trusting a book that may be wrong.
        """
        changed = self._mine & (self.stale != stale)
        if changed.any():
            self.stale[changed] = stale
            self.seq[changed] += 1

    def rebuild(self, snapshot: Iterable[Message]) -> None:
        """Replace every book with a snapshot's (directory, trading actions, live orders), all fresh.

        Last trade and cumulative volume are kept: a snapshot carries no prints, so they may understate
        trades inside the skipped hole. Every known symbol gets a new version so clients see the rebuilt
        state (and the cleared stale flag) in their next update.
        """
        self.orders.clear()
        self._sides.clear()
        mine = self._mine
        for arr in (self.bid_price, self.bid_size, self.ask_price, self.ask_size):
            arr[mine] = 0
        self.apply_batch(list(snapshot))
        mine = self._mine  # the snapshot's directory may have added some
        self.stale[mine] = False
        self.seq[mine] += 1
        self.depth_seq[mine] += 1

    # ------------------------------------------------------------------ order book
    def _publish(self, key: int, side: Side) -> None:
        """Copy one side's best level into the arrays (no version bump: the caller does that once)."""
        locate = key >> 1
        lv, ladder = side
        if ladder:
            best = ladder[0]
            size = lv[best]
        else:
            best = size = 0
        if key & 1:
            self._ap[locate] = best
            self._as[locate] = size
        else:
            self._bp[locate] = -best
            self._bs[locate] = size

    def _remove(self, key: int, sp: int, shares: int) -> Side | None:
        """Take shares off a level; the side if that moved its inside (for the caller to publish), else None."""
        self._dseq[key >> 1] += 1
        side = self._sides[key]
        lv, ladder = side
        at_top = ladder[0] == sp
        left = lv[sp] - shares
        if left > 0:
            lv[sp] = left
        else:
            del lv[sp]
            if at_top:
                del ladder[0]
            else:
                del ladder[bisect_left(ladder, sp)]
        return side if at_top else None

    def _add(self, m: AddOrder) -> None:
        locate, _, ts, ref, side_code, shares, _, price, _ = m
        if side_code == "B":
            side, sp = BID, -price
        elif side_code == "S":
            side, sp = ASK, price
        else:
            self.counters["bad_side"] += 1
            return
        if shares <= 0 or price <= 0:
            self.counters["bad_shares" if shares <= 0 else "bad_price"] += 1
            return
        if not 0 < locate < MAX_LOCATES:
            self.counters["unknown_locate"] += 1
            return
        key = locate << 1 | side
        order = (key, sp, shares)
        # one probe of the (large) order dict both checks the reference and inserts
        if self.orders.setdefault(ref, order) is not order:
            self.counters["duplicate_order_ref"] += 1
            return
        if not self._known[locate]:
            self.counters["unknown_locate"] += 1
        book = self._sides.get(key)
        if book is None:
            book = self._sides[key] = ({}, [])
        lv, ladder = book
        size = lv.get(sp)
        if size is None:
            lv[sp] = size = shares
            insort(ladder, sp)
        else:
            lv[sp] = size = size + shares
        self._dseq[locate] += 1
        if ladder[0] == sp:
            if side:
                self._ap[locate] = price
                self._as[locate] = size
            else:
                self._bp[locate] = price
                self._bs[locate] = size
            self._seq[locate] += 1
            self._et[locate] = ts + self._t0

    def _delete(self, m: OrderDelete) -> None:
        o = self.orders.pop(m.order_ref, None)
        if o is None:
            self.counters["unknown_order"] += 1
            return
        # _remove inlined: deletes are about 40% of a TotalView day
        key, sp, shares = o
        locate = key >> 1
        self._dseq[locate] += 1
        side = self._sides[key]
        lv, ladder = side
        left = lv[sp] - shares
        if left > 0:
            lv[sp] = left
            if ladder[0] != sp:
                return
        else:
            del lv[sp]
            if ladder[0] != sp:
                del ladder[bisect_left(ladder, sp)]
                return
            del ladder[0]
        self._publish(key, side)
        self._seq[locate] += 1
        self._et[locate] = m.timestamp + self._t0

    def _cancel(self, m: OrderCancel) -> None:
        o = self._take(m.order_ref, m.cancelled_shares)
        if o is not None:
            key = o[0]
            side = self._remove(key, o[1], o[2])
            if side is not None:
                self._publish(key, side)
                locate = key >> 1
                self._seq[locate] += 1
                self._et[locate] = m.timestamp + self._t0

    def _take(self, ref: int, shares: int) -> Order | None:
        """Reduce a live order by ``shares`` for E/C/X: returns (key, signed price, shares to take off the
        level), removing the order when nothing remains; None (counted) when the message is bad."""
        o = self.orders.get(ref)
        if o is None:
            self.counters["unknown_order"] += 1
            return None
        if shares <= 0:
            self.counters["bad_shares"] += 1
            return None
        key, sp, left = o
        if shares < left:
            self.orders[ref] = (key, sp, left - shares)
            return key, sp, shares
        if shares > left:
            self.counters["over_execution"] += 1
        del self.orders[ref]
        return o

    def _executed(self, m: OrderExecuted) -> None:
        o = self._take(m.order_ref, m.executed_shares)
        if o is None:
            return
        key, sp = o[0], o[1]
        side = self._remove(key, sp, o[2])
        if side is not None:
            self._publish(key, side)
        # the resting order sold (an ask): the aggressor bought
        self._print(key >> 1, sp if sp > 0 else -sp, m.executed_shares, m.timestamp, m.match_number,
                    _AGGRESSED[key & 1])

    def _executed_with_price(self, m: OrderExecutedWithPrice) -> None:
        if m.execution_price <= 0 and m.printable == "Y":
            self.counters["bad_price"] += 1
            return
        o = self._take(m.order_ref, m.executed_shares)
        if o is None:
            return
        key = o[0]
        locate = key >> 1
        moved = self._remove(key, o[1], o[2])
        if moved is not None:
            self._publish(key, moved)
        if m.printable == "Y":
            self._print(locate, m.execution_price, m.executed_shares, m.timestamp, m.match_number,
                        _AGGRESSED[key & 1])
        elif moved is not None:
            self._seq[locate] += 1
            self._et[locate] = m.timestamp + self._t0

    def _replace(self, m: OrderReplace) -> None:
        orders = self.orders
        o = orders.get(m.original_order_ref)
        if o is None:
            self.counters["unknown_order"] += 1
            return
        _, _, ts, old_ref, new_ref, shares, price = m
        if new_ref in orders:
            self.counters["duplicate_order_ref"] += 1
            return
        if shares <= 0 or price <= 0:
            self.counters["bad_shares" if shares <= 0 else "bad_price"] += 1
            return
        del orders[old_ref]
        key, sp, left = o
        self._remove(key, sp, left)
        lv, ladder = self._sides[key]
        sp = price if key & 1 else -price
        size = lv.get(sp)
        if size is None:
            lv[sp] = shares
            insort(ladder, sp)
        else:
            lv[sp] = size + shares
        orders[new_ref] = (key, sp, shares)
        # the old order may have left the inside and the new one joined it at the same size: compare, then
        # publish only a real change
        best = ladder[0]
        size = lv[best]
        locate = key >> 1
        if key & 1:
            if self._ap[locate] == best and self._as[locate] == size:
                return
            self._ap[locate] = best
            self._as[locate] = size
        else:
            if self._bp[locate] == -best and self._bs[locate] == size:
                return
            self._bp[locate] = -best
            self._bs[locate] = size
        self._seq[locate] += 1
        self._et[locate] = ts + self._t0

    # ------------------------------------------------------------------ prints and status
    def _print(self, locate: int, price: int, size: int, ts: int, match: int, flags: int) -> None:
        """A trade print: last, volume, one version, the symbol's next trade_seq, and the ring (``ts`` as ITCH
        stamps it)."""
        ts += self._t0
        self._lp[locate] = price
        self._ls[locate] = size
        self._vol[locate] += size
        seq = self._seq[locate] + 1
        self._seq[locate] = seq
        self._et[locate] = ts
        tseq = self._tseq[locate] + 1
        self._tseq[locate] = tseq
        self._trades.record(locate, price, size, ts, _int64(match), seq, tseq, flags)

    def _print_locate(self, locate: int) -> bool:
        """Whether a print/status message for ``locate`` may be applied (counting what is wrong with it)."""
        if not 0 < locate < MAX_LOCATES:
            self.counters["unknown_locate"] += 1
            return False
        if not self._known[locate]:
            self.counters["unknown_locate"] += 1
        return True

    def _trade(self, m: Trade) -> None:
        if m.shares <= 0 or m.price <= 0:
            self.counters["bad_shares" if m.shares <= 0 else "bad_price"] += 1
        elif self._print_locate(m.locate):
            self._print(m.locate, m.price, m.shares, m.timestamp, m.match_number, PRINTABLE)

    def _cross(self, m: CrossTrade) -> None:
        # a cross with no shares is Nasdaq saying the cross happened and nothing matched: not a print
        if m.shares <= 0:
            return
        if m.shares > MAX_CROSS_SHARES:  # 8 bytes on the wire; more than any other print could carry
            self.counters["bad_shares"] += 1
        elif m.cross_price <= 0:
            self.counters["bad_price"] += 1
        elif self._print_locate(m.locate):
            self._print(m.locate, m.cross_price, m.shares, m.timestamp, m.match_number,
                        flags_of(cross=m.cross_type))

    def _broken(self, m: BrokenTrade) -> None:
        self.counters["broken_trades"] += 1
        self._breaks.record(m.locate, 0, 0, m.timestamp + self._t0, _int64(m.match_number), 0)

    def _directory(self, m: StockDirectory) -> None:
        locate, stock = m.locate, m.stock
        if not 0 < locate < MAX_LOCATES:
            self.counters["unknown_locate"] += 1
            return
        old = self.symbol_of[locate]
        if old == stock:
            self.round_lot[locate] = m.round_lot_size
            return
        if old is not None and self.locate_of.get(old) == locate:
            del self.locate_of[old]
        self.symbol_of[locate] = stock
        self.locate_of[stock] = locate
        self.round_lot[locate] = m.round_lot_size
        self._mine[locate] = True
        self._known[locate] = True
        self._seq[locate] += 1  # the name is published with the quote
        self._et[locate] = m.timestamp + self._t0
        if locate > self.high_locate:
            self.high_locate = locate
