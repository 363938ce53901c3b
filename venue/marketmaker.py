"""A market-maker simulator (``tickfan market-maker``): a FIX 4.4 acceptor that fills orders at the current book.

Layers, inside out:
- :class:`MatchingEngine` (pure: quotes, time and randomness passed in) keeps the orders and decides every
  execution. A buy fills at the ask, a sell at the bid; a market order is always marketable while the far
  side exists, a limit order when it crosses it (buy limit >= ask, sell limit <= bid). Each execution fills
  at most the displayed size at the touch (and ``Faults.max_fill_qty``), the rest follows in later
  executions ``fill_interval`` apart while the order stays marketable. The book is a quote, not a depth of
  orders: displayed size is not consumed, it is "refreshed" between executions. A day order that is not
  marketable rests and is re-checked every ``recheck_interval``; an IOC order gets one execution at most
  and its remainder is cancelled at once.
- Quote providers: :class:`StaticQuoteProvider` (a table, for tests) and :class:`HttpQuoteProvider` (polls
  the snapshot service's ``GET /v1/quotes``, caches, treats halted/stale/old quotes as none).
- :class:`MarketMaker` (asyncio) accepts TCP connections, runs one ``FixSession`` per connection, feeds
  the engine, applies injected faults and writes execution reports.

Orders and ClOrdIDs. All initiators are treated as one firm: ClOrdIDs are unique across sessions, so an
execution worker that takes over another worker's orders (after a crash) can ask about them under its own
CompID. An order's reports go to the session that last sent a message about it (NewOrderSingle, cancel or
status request); if that session is gone they are kept with the order and re-sent on the next
OrderStatusRequest. A repeated NewOrderSingle with the same ClOrdID and the same terms is the same order
(answered with an ExecType I status report); with different terms it is rejected (ExecType 8, OrderID
"NONE", Text "duplicate ClOrdID with different terms") and the original order is untouched.

Bounds: at most ``max_orders`` orders are kept (default 100,000) in this process's memory. When full, the
oldest finished orders (filled, cancelled, rejected) are forgotten first; if every order is still open a new
one is rejected ("order table full"). A forgotten or never-seen ClOrdID answers a status request with
OrdStatus 8 and Text "unknown order". A restart forgets everything; OrderIDs and ExecIDs carry a random
per-process prefix, so an ExecID is never reused across restarts. Each connection holds at most
``MAX_QUEUED_REPORTS`` unsent reports; beyond that it is dropped (the reports stay with their orders).

Faults (:class:`Faults`, changeable at runtime on ``MarketMaker.faults``; ``set_down``/``drop_connections``
are methods): latency (+ jitter) before each report, a reject rate, partial-fill behaviour, refusing
connections, dropping a connection after N reports, and "slow" (no heartbeats and no TestRequest answers,
so the client's dead-peer detection fires). The CLI exposes each as a flag; SIGUSR1 toggles "down" and
SIGUSR2 drops every connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import logging
import random
import re
import secrets
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol, runtime_checkable

import orjson

from order_api.fix import (
    MSG_SEQ_NUM,
    MSG_TYPE,
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    FixFieldError,
    FixMessage,
    MsgType,
    NewOrder,
    OrdStatus,
    SessionRejectReason,
    StatusRequest,
)
from order_api.fix_session import Closed, FixSession, LoggedOn, Received, RejectReceived, Role, SessionState
from vocab.addr import parse_hostport
from vocab.prices import parse_price

log = logging.getLogger("tickfan.marketmaker")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9878
DEFAULT_COMP_ID = "MM1"
# The snapshot service's HTTP (tickfan node/demo --http; see tickfan/node.py)
DEFAULT_QUOTES_URL = "http://127.0.0.1:8000"
MAX_ORDERS = 100_000
MAX_QUEUED_REPORTS = 100_000
READ_SIZE = 64 * 1024
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,7}$")
UNKNOWN_ORDER = "unknown order"
DUPLICATE_TERMS = "duplicate ClOrdID with different terms"

Report = ExecutionReport | CancelReject


# ============================================================================================ quotes


class BookQuote(NamedTuple):
    """Top of book: prices with 4 implied decimals (0 = no such side), sizes in shares."""

    bid_px: int
    bid_size: int
    ask_px: int
    ask_size: int


@runtime_checkable
class QuoteProvider(Protocol):
    def quote(self, symbol: str) -> tuple[int, int, int, int] | None:
        """(bid_px, bid_size, ask_px, ask_size) for ``symbol``, or None when unknown or without a quote."""
        ...


@runtime_checkable
class PrimableQuoteProvider(QuoteProvider, Protocol):
    async def prime(self, symbol: str) -> tuple[int, int, int, int] | None:
        """Fetch ``symbol`` now (first order for it); same answer as ``quote`` afterwards."""
        ...


class StaticQuoteProvider:
    """A quote table, changeable at any time (tests, offline demos)."""

    def __init__(self, quotes: Mapping[str, tuple[int, int, int, int]] | None = None) -> None:
        self.quotes: dict[str, BookQuote] = {s: BookQuote(*q) for s, q in (quotes or {}).items()}

    def set(self, symbol: str, bid_px: int, bid_size: int, ask_px: int, ask_size: int) -> None:
        self.quotes[symbol] = BookQuote(bid_px, bid_size, ask_px, ask_size)

    def remove(self, symbol: str) -> None:
        self.quotes.pop(symbol, None)

    def quote(self, symbol: str) -> BookQuote | None:
        return self.quotes.get(symbol)


def parse_static_quotes(text: str) -> dict[str, BookQuote]:
    """``AAPL=189.25x300/189.26x200,MSFT=...`` (bid x size / ask x size) as a quote table."""
    out: dict[str, BookQuote] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            sym, _, rest = item.partition("=")
            bid, _, ask = rest.partition("/")
            bid_px, _, bid_size = bid.partition("x")
            ask_px, _, ask_size = ask.partition("x")
            out[sym.strip().upper()] = BookQuote(parse_price(bid_px), int(bid_size), parse_price(ask_px),
                                                 int(ask_size))
        except ValueError as e:
            raise ValueError(f"expected SYMBOL=BIDxSIZE/ASKxSIZE, got {item!r}: {e}") from None
    return out


class HttpQuoteProvider:
    """Quotes from the snapshot service: ``GET {base_url}/v1/quotes?symbols=...`` every ``interval`` seconds.

    Only symbols asked for are polled (at most ``max_symbols``, the least recently asked dropped first). A
    quote older than ``max_age`` (the service is down), halted or stale counts as no quote. Symbols the
    service calls unknown are remembered as such for ``unknown_ttl`` seconds. Runs urllib in a thread: no
    HTTP client dependency for one small GET.
    """

    def __init__(self, base_url: str = DEFAULT_QUOTES_URL, *, interval: float = 0.25, max_age: float = 5.0,
                 timeout: float = 1.0, max_symbols: int = 1000, unknown_ttl: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval, self.max_age, self.timeout = interval, max_age, timeout
        self.max_symbols, self.unknown_ttl = max_symbols, unknown_ttl
        self._cache: dict[str, tuple[BookQuote | None, float]] = {}
        self._wanted: OrderedDict[str, None] = OrderedDict()
        self.counters = {"polls": 0, "errors": 0, "unknown": 0}
        self.last_error: str | None = None

    def _want(self, symbol: str) -> None:
        self._wanted[symbol] = None
        self._wanted.move_to_end(symbol)
        while len(self._wanted) > self.max_symbols:
            old, _ = self._wanted.popitem(last=False)
            self._cache.pop(old, None)

    def quote(self, symbol: str) -> BookQuote | None:
        self._want(symbol)
        entry = self._cache.get(symbol)
        if entry is None:
            return None
        q, at = entry
        return q if q is not None and time.monotonic() - at <= self.max_age else None

    async def prime(self, symbol: str) -> BookQuote | None:
        q = self.quote(symbol)
        if q is None and symbol not in self._known_unknown():
            await self.fetch([symbol])
            q = self.quote(symbol)
        return q

    def _known_unknown(self) -> set[str]:
        now = time.monotonic()
        return {s for s, (q, at) in self._cache.items() if q is None and now - at <= self.unknown_ttl}

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            unknown = self._known_unknown()
            symbols = [s for s in self._wanted if s not in unknown]
            if symbols:
                await self.fetch(symbols)
            await asyncio.sleep(self.interval)

    async def fetch(self, symbols: list[str]) -> None:
        for i in range(0, len(symbols), 500):
            chunk = symbols[i:i + 500]
            for _ in range(2):  # once more without the symbols the service did not know
                retry = await self._fetch_chunk(chunk)
                if not retry:
                    break
                chunk = retry

    async def _fetch_chunk(self, symbols: list[str]) -> list[str]:
        url = f"{self.base_url}/v1/quotes?symbols={urllib.parse.quote(','.join(symbols), safe=',')}"
        self.counters["polls"] += 1
        try:
            status, body = await asyncio.to_thread(self._get, url)
            doc = orjson.loads(body)
        except (OSError, ValueError) as e:
            self.counters["errors"] += 1
            self.last_error = f"{url}: {e}"
            return []
        now = time.monotonic()
        if status == 404 and isinstance(doc, dict) and doc.get("error", {}).get("code") == "unknown_symbol":
            unknown = {str(s) for s in doc["error"].get("symbols", [])}
            for s in unknown:
                self._cache[s] = (None, now)
                self.counters["unknown"] += 1
            return [s for s in symbols if s not in unknown]
        if status != 200 or not isinstance(doc, dict):
            self.counters["errors"] += 1
            self.last_error = f"{url}: HTTP {status}"
            return []
        for rec in doc.get("quotes", []):
            try:
                self._cache[rec["symbol"]] = (quote_from_record(rec), now)
            except (KeyError, ValueError, TypeError) as e:
                self.counters["errors"] += 1
                self.last_error = f"bad quote record {rec!r}: {e}"
        self.last_error = None
        return []

    def _get(self, url: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 (configured URL)
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())


def quote_from_record(rec: Mapping[str, object]) -> BookQuote | None:
    """A ``/v1/quotes`` record (see snapshots/quote.py) as a BookQuote; None when halted, stale or empty."""
    if rec.get("halted") or rec.get("stale"):
        return None
    bid, ask = rec.get("bid_price"), rec.get("ask_price")
    bid_px = parse_price(str(bid)) if bid else 0
    ask_px = parse_price(str(ask)) if ask else 0
    if not bid_px and not ask_px:
        return None
    return BookQuote(bid_px, int(str(rec.get("bid_size") or 0)), ask_px, int(str(rec.get("ask_size") or 0)))


# ============================================================================================ the engine


@dataclass
class Faults:
    """Injected misbehaviour; every field may be changed while running."""

    latency_ms: float = 0.0          # fixed delay before each execution report
    jitter_ms: float = 0.0           # plus a uniform random delay in [0, jitter_ms]
    reject_rate: float = 0.0         # fraction of new orders rejected ("simulated reject")
    partial_fills: bool = True       # False: each execution fills the whole remainder, whatever the size shown
    max_fill_qty: int | None = None  # cap on each execution's quantity (forces more partial fills)
    drop_after: int | None = None    # abort each connection after it has sent this many application messages
    slow: bool = False               # send no heartbeats and answer no TestRequests


OPEN_STATUSES = frozenset({OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED})


@dataclass
class SimOrder:
    order: NewOrder
    order_id: str
    owner: str  # CompID of the session that last sent a message about this order
    status: OrdStatus = OrdStatus.NEW
    cum_qty: int = 0
    notional: int = 0  # sum of qty * px (8 implied decimals)
    text: str = ""
    trades: list[ExecutionReport] = field(default_factory=list)
    next_check: float = 0.0

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> int:
        return self.order.qty - self.cum_qty if self.open else 0

    @property
    def avg_px(self) -> int:
        """Average fill price, rounded half up to 4 decimals (exact cost: sum of last_qty * last_px)."""
        return (2 * self.notional + self.cum_qty) // (2 * self.cum_qty) if self.cum_qty else 0


class MatchingEngine:
    """Orders and executions, pure: each call returns the reports it causes, in order."""

    def __init__(self, quotes: QuoteProvider, faults: Faults | None = None, *, rng: random.Random | None = None,
                 max_orders: int = MAX_ORDERS, fill_interval: float = 0.005, recheck_interval: float = 0.05,
                 id_prefix: str | None = None) -> None:
        self.quotes = quotes
        self.faults = faults or Faults()
        self.rng = rng or random.Random()
        self.max_orders = max_orders
        self.fill_interval = fill_interval
        self.recheck_interval = recheck_interval
        self.id_prefix = id_prefix or secrets.token_hex(4)
        self.orders: OrderedDict[str, SimOrder] = OrderedDict()
        self.open_count = 0
        self._finished: deque[str] = deque()  # ClOrdIDs of finished orders, oldest first (eviction order)
        self._schedule: list[tuple[float, int, str]] = []
        self._seq = 0
        self._next_order = 0
        self._next_exec = 0
        self.counters = dict.fromkeys(("orders", "fills", "filled_qty", "rejects", "cancels", "cancel_rejects",
                                       "status_requests", "duplicates", "evicted"), 0)

    # ---------------------------------------------------------------- ids and reports

    def _order_id(self) -> str:
        self._next_order += 1
        return f"O-{self.id_prefix}-{self._next_order}"

    def _exec_id(self) -> str:
        self._next_exec += 1
        return f"X-{self.id_prefix}-{self._next_exec}"

    def _report(self, o: SimOrder, exec_type: ExecType, *, last_qty: int = 0, last_px: int = 0, text: str = "",
                cl_ord_id: str | None = None, orig_cl_ord_id: str | None = None) -> ExecutionReport:
        return ExecutionReport(
            cl_ord_id=cl_ord_id or o.order.cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, order_id=o.order_id,
            exec_id=self._exec_id(), exec_type=exec_type, ord_status=o.status, symbol=o.order.symbol,
            side=o.order.side, last_qty=last_qty, last_px=last_px, leaves_qty=o.leaves_qty, cum_qty=o.cum_qty,
            avg_px=o.avg_px, text=text)

    def status_report(self, o: SimOrder) -> ExecutionReport:
        return self._report(o, ExecType.ORDER_STATUS, text=o.text)

    # ---------------------------------------------------------------- bookkeeping

    def _finish(self, o: SimOrder, status: OrdStatus, text: str = "") -> None:
        was_open = o.open
        o.status = status
        if text:
            o.text = text
        if was_open:
            self.open_count -= 1
            self._finished.append(o.order.cl_ord_id)

    def _make_room(self) -> bool:
        while len(self.orders) >= self.max_orders and self._finished:
            key = self._finished.popleft()
            o = self.orders.get(key)
            if o is not None and not o.open:
                del self.orders[key]
                self.counters["evicted"] += 1
        return len(self.orders) < self.max_orders

    def _schedule_check(self, o: SimOrder, at: float) -> None:
        o.next_check = at
        self._seq += 1
        heapq.heappush(self._schedule, (at, self._seq, o.order.cl_ord_id))

    def _is_current(self, entry: tuple[float, int, str]) -> bool:
        o = self.orders.get(entry[2])
        return o is not None and o.open and o.next_check == entry[0]

    # ---------------------------------------------------------------- messages in

    def new_order(self, owner: str, order: NewOrder, now: float) -> list[Report]:
        existing = self.orders.get(order.cl_ord_id)
        if existing is not None:
            self.counters["duplicates"] += 1
            if existing.order.terms() == order.terms():
                existing.owner = owner
                return [self.status_report(existing)]
            self.counters["rejects"] += 1
            return [ExecutionReport(order.cl_ord_id, None, "NONE", self._exec_id(), ExecType.REJECTED,
                                    OrdStatus.REJECTED, order.symbol, order.side, 0, 0, 0, 0, 0, DUPLICATE_TERMS)]
        self.counters["orders"] += 1
        o = SimOrder(order, self._order_id(), owner)
        if not self._make_room():
            self.counters["rejects"] += 1
            o.status, o.text = OrdStatus.REJECTED, "order table full"
            return [self._report(o, ExecType.REJECTED, text=o.text)]
        self.orders[order.cl_ord_id] = o
        self.open_count += 1
        quote = self.quotes.quote(order.symbol) if SYMBOL_RE.match(order.symbol) else None
        reason = None
        if quote is None:
            reason = f"unknown symbol or no quote: {order.symbol}"
        elif self.faults.reject_rate > 0 and self.rng.random() < self.faults.reject_rate:
            reason = "simulated reject (fault injection)"
        elif order.ord_type == "market" and not (quote[2] if order.side == "buy" else quote[0]):
            reason = f"no {'ask' if order.side == 'buy' else 'bid'} for {order.symbol}"
        if reason is not None:
            self.counters["rejects"] += 1
            self._finish(o, OrdStatus.REJECTED, reason)
            return [self._report(o, ExecType.REJECTED, text=reason)]
        reports: list[Report] = [self._report(o, ExecType.NEW)]
        assert quote is not None
        reports += self._execute(o, BookQuote(*quote), now)
        if o.open:
            if order.tif == "ioc":
                self.counters["cancels"] += 1
                self._finish(o, OrdStatus.CANCELED, "IOC: unfilled quantity cancelled")
                reports.append(self._report(o, ExecType.CANCELED, text=o.text))
            else:
                self._schedule_check(o, now + (self.fill_interval if o.cum_qty else self.recheck_interval))
        return reports

    def cancel(self, owner: str, req: CancelRequest, now: float) -> list[Report]:
        o = self.orders.get(req.orig_cl_ord_id)
        if o is None:
            self.counters["cancel_rejects"] += 1
            return [CancelReject(req.cl_ord_id, req.orig_cl_ord_id, "NONE", OrdStatus.REJECTED,
                                 CxlRejReason.UNKNOWN_ORDER, UNKNOWN_ORDER)]
        o.owner = owner
        if not o.open:
            self.counters["cancel_rejects"] += 1
            return [CancelReject(req.cl_ord_id, req.orig_cl_ord_id, o.order_id, o.status,
                                 CxlRejReason.TOO_LATE_TO_CANCEL, f"too late to cancel: order is {o.status.name}")]
        self.counters["cancels"] += 1
        self._finish(o, OrdStatus.CANCELED, "cancelled on request")
        return [self._report(o, ExecType.CANCELED, text=o.text, cl_ord_id=req.cl_ord_id,
                             orig_cl_ord_id=o.order.cl_ord_id)]

    def status(self, owner: str, req: StatusRequest) -> list[Report]:
        """Every trade of the order again (original ExecIDs, PossResend=Y), then an ExecType I status report."""
        self.counters["status_requests"] += 1
        o = self.orders.get(req.cl_ord_id)
        if o is None:
            return [ExecutionReport(req.cl_ord_id, None, "NONE", self._exec_id(), ExecType.ORDER_STATUS,
                                    OrdStatus.REJECTED, req.symbol, req.side, 0, 0, 0, 0, 0, UNKNOWN_ORDER)]
        o.owner = owner
        return [*(replace(t, poss_resend=True) for t in o.trades), self.status_report(o)]

    # ---------------------------------------------------------------- executions

    def _execute(self, o: SimOrder, q: BookQuote, now: float) -> list[Report]:
        buy = o.order.side == "buy"
        px, size = (q.ask_px, q.ask_size) if buy else (q.bid_px, q.bid_size)
        if px <= 0 or size <= 0:
            return []
        limit = o.order.limit_price
        if limit is not None and (limit < px if buy else limit > px):
            return []
        qty = o.leaves_qty
        if self.faults.partial_fills:
            qty = min(qty, size)
        if self.faults.max_fill_qty:
            qty = min(qty, self.faults.max_fill_qty)
        if qty <= 0:
            return []
        o.cum_qty += qty
        o.notional += qty * px
        if o.cum_qty >= o.order.qty:
            self._finish(o, OrdStatus.FILLED)
        else:
            o.status = OrdStatus.PARTIALLY_FILLED
        self.counters["fills"] += 1
        self.counters["filled_qty"] += qty
        report = self._report(o, ExecType.TRADE, last_qty=qty, last_px=px)
        o.trades.append(report)
        return [report]

    def step(self, now: float) -> list[tuple[str, Report]]:
        """Executions due by ``now``: the next slice of partly filled orders, resting orders now marketable."""
        out: list[tuple[str, Report]] = []
        while self._schedule and self._schedule[0][0] <= now:
            entry = heapq.heappop(self._schedule)
            if not self._is_current(entry):
                continue
            o = self.orders[entry[2]]
            quote = self.quotes.quote(o.order.symbol)
            reports = self._execute(o, BookQuote(*quote), now) if quote is not None else []
            out += [(o.owner, r) for r in reports]
            if o.open:
                self._schedule_check(o, now + (self.fill_interval if reports else self.recheck_interval))
        return out

    def next_wakeup(self) -> float | None:
        while self._schedule and not self._is_current(self._schedule[0]):
            heapq.heappop(self._schedule)
        return self._schedule[0][0] if self._schedule else None


# ============================================================================================ the acceptor


class _Connection:
    """One TCP connection: its FIX session, a reader, a timer and a paced writer of execution reports."""

    def __init__(self, mm: MarketMaker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.mm = mm
        self.reader, self.writer = reader, writer
        self.session = FixSession(Role.ACCEPTOR, mm.comp_id, None, logon_timeout=mm.logon_timeout,
                                  clock=mm.clock)
        self.peer: str | None = None
        self.queue: deque[tuple[float, Report]] = deque()
        self._wake = asyncio.Event()
        self.app_sent = 0
        self.closed_reason: str | None = None
        peername = writer.get_extra_info("peername")
        self.address = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)

    # ---------------------------------------------------------------- plumbing

    def _write(self) -> None:
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def enqueue(self, report: Report) -> None:
        if len(self.queue) >= MAX_QUEUED_REPORTS:
            self.abort("client too slow: report queue full")
            return
        f = self.mm.faults
        delay = (f.latency_ms + (f.jitter_ms * self.mm.rng.random() if f.jitter_ms > 0 else 0.0)) / 1000
        self.queue.append((asyncio.get_running_loop().time() + delay, report))
        self._wake.set()

    def abort(self, reason: str) -> None:
        """Drop the connection at once (no Logout): a crash as the client sees it."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self.mm.counters["drops"] += 1
        log.info("dropping %s (%s): %s", self.peer or "?", self.address, reason)
        self.writer.transport.abort()
        if not self.session.closed:
            self.session.connection_lost(asyncio.get_running_loop().time(), reason)

    def logout(self, reason: str) -> None:
        if self.session.state in (SessionState.ACTIVE, SessionState.AWAITING_LOGON):
            self.session.logout(reason, asyncio.get_running_loop().time())
            self._write()

    # ---------------------------------------------------------------- tasks

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.session.start(loop.time())
        tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._timer_loop()),
                 asyncio.create_task(self._write_loop())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(OSError, RuntimeError):
                self._write()
                self.writer.close()
            self.mm._unregister(self)
            reason = self.closed_reason or self.session.close_reason or "closed"
            log.info("session %s (%s) ended: %s", self.peer or "?", self.address, reason)

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while not self.session.closed:
                data = await self.reader.read(READ_SIZE)
                if self.session.closed:
                    break
                if not data:
                    await self._handle(self.session.connection_lost(loop.time(), "connection closed by the client"))
                    break
                events = self.session.receive_data(data, loop.time())
                self._write()
                await self._handle(events)

    async def _timer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.session.closed:
            self.session.muted = self.mm.faults.slow
            deadline = self.session.next_deadline()
            delay = 0.25 if deadline is None else min(max(deadline - loop.time(), 0.0), 0.25)
            await asyncio.sleep(delay)
            if self.session.closed:
                break
            self.session.muted = self.mm.faults.slow
            events = self.session.tick(loop.time())
            self._write()
            await self._handle(events)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.session.closed:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, report = self.queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.queue.popleft()
            if not self.session.active:
                continue  # kept with its order; a status request brings it back
            self.session.send(report.to_fix(), loop.time())
            self._write()
            self.app_sent += 1
            self.mm.counters["reports_sent"] += 1
            drop_after = self.mm.faults.drop_after
            if drop_after is not None and self.app_sent >= drop_after:
                self.abort(f"fault injection: drop after {drop_after} messages")
                return
            with contextlib.suppress(OSError, RuntimeError):
                await self.writer.drain()

    async def _handle(self, events: Sequence[object]) -> None:
        for ev in events:
            if isinstance(ev, LoggedOn):
                self.peer = ev.peer_comp_id
                self.mm._register(self)
                log.info("session %s (%s) logged on, heartbeat %d s", self.peer, self.address, ev.heartbeat_interval)
            elif isinstance(ev, Received):
                await self._on_app(ev.message)
            elif isinstance(ev, RejectReceived):
                self.mm.counters["session_rejects_in"] += 1
            elif isinstance(ev, Closed):
                if self.closed_reason is None:
                    self.closed_reason = ev.reason

    async def _on_app(self, msg: FixMessage) -> None:
        engine, loop = self.mm.engine, asyncio.get_running_loop()
        owner = self.peer or ""
        mtype = msg.msg_type
        try:
            if mtype == MsgType.NEW_ORDER_SINGLE:
                order = NewOrder.from_fix(msg)
                await self.mm._prime(order.symbol)
                reports = engine.new_order(owner, order, loop.time())
            elif mtype == MsgType.ORDER_CANCEL_REQUEST:
                reports = engine.cancel(owner, CancelRequest.from_fix(msg), loop.time())
            elif mtype == MsgType.ORDER_STATUS_REQUEST:
                reports = engine.status(owner, StatusRequest.from_fix(msg))
            else:
                raise FixFieldError(MSG_TYPE, SessionRejectReason.INVALID_MSG_TYPE, f"unsupported MsgType {mtype}")
        except FixFieldError as e:
            self.mm.counters["session_rejects_out"] += 1
            if self.session.state in (SessionState.ACTIVE, SessionState.LOGOUT_SENT):
                self.session.reject(int(msg.get(MSG_SEQ_NUM, "0") or 0), e.reason, e.text, loop.time(),
                                    ref_tag=e.tag, ref_msg_type=mtype)
                self._write()
            return
        for r in reports:
            self.enqueue(r)
        self.mm._kick.set()


class MarketMaker:
    """The asyncio acceptor. ``await start()``, then ``faults``, ``set_down``, ``drop_connections`` at will."""

    def __init__(self, quotes: QuoteProvider, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 comp_id: str = DEFAULT_COMP_ID, faults: Faults | None = None, seed: int | None = None,
                 max_orders: int = MAX_ORDERS, fill_interval: float = 0.005, recheck_interval: float = 0.05,
                 logon_timeout: float = 10.0, prime_timeout: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.quotes = quotes
        self.host, self.port = host, port
        self.comp_id = comp_id
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.engine = MatchingEngine(quotes, self.faults, rng=random.Random(None if seed is None else seed + 1),
                                     max_orders=max_orders, fill_interval=fill_interval,
                                     recheck_interval=recheck_interval)
        self.logon_timeout = logon_timeout
        self.prime_timeout = prime_timeout
        self.clock = clock
        self.down = False
        self.connections: set[_Connection] = set()
        self.sessions: dict[str, _Connection] = {}
        self.counters = dict.fromkeys(("connections", "refused", "drops", "reports_sent", "session_rejects_out",
                                       "session_rejects_in"), 0)
        self._server: asyncio.Server | None = None
        self._matcher: asyncio.Task[None] | None = None
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self._listen()
        self._matcher = asyncio.create_task(self._match_loop(), name="mm-matcher")

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._matcher is not None:
            self._matcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._matcher
            self._matcher = None
        await self._close_listener()
        for conn in list(self.connections):
            conn.logout("market maker shutting down")
        for t in list(self._conn_tasks):
            t.cancel()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)

    async def __aenter__(self) -> MarketMaker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # ---------------------------------------------------------------- faults

    async def set_down(self, down: bool) -> None:
        """Down: stop listening (connections are refused) and drop every connection. Up: listen again."""
        if down == self.down:
            return
        self.down = down
        if down:
            await self._close_listener()
            self.drop_connections("fault injection: market maker down")
        else:
            await self._listen()
        log.warning("market maker %s", "DOWN: refusing connections" if down else "up again")

    def drop_connections(self, reason: str = "fault injection: connection dropped") -> int:
        """Abort every connection now (no Logout). Returns how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort(reason)
        return len(conns)

    # ---------------------------------------------------------------- connections

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.counters["refused"] += 1
            writer.transport.abort()
            return
        self.counters["connections"] += 1
        conn = _Connection(self, reader, writer)
        self.connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            # Shutting down. A start_server handler task that ends cancelled is reported by asyncio (3.11)
            # as an "Exception in callback" with a traceback; ending normally is what stop() means.
            pass
        finally:
            self.connections.discard(conn)
            if task is not None:
                self._conn_tasks.discard(task)

    def _register(self, conn: _Connection) -> None:
        assert conn.peer is not None
        old = self.sessions.get(conn.peer)
        if old is not None and old is not conn:
            old.abort(f"replaced by a new logon from {conn.peer}")
        self.sessions[conn.peer] = conn

    def _unregister(self, conn: _Connection) -> None:
        if conn.peer is not None and self.sessions.get(conn.peer) is conn:
            del self.sessions[conn.peer]

    async def _prime(self, symbol: str) -> None:
        if isinstance(self.quotes, PrimableQuoteProvider) and SYMBOL_RE.match(symbol) \
                and self.quotes.quote(symbol) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quotes.prime(symbol), self.prime_timeout)

    # ---------------------------------------------------------------- executions over time

    async def _match_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for owner, report in self.engine.step(loop.time()):
                conn = self.sessions.get(owner)
                if conn is not None:
                    conn.enqueue(report)
            wake = self.engine.next_wakeup()
            self._kick.clear()
            timeout = None if wake is None else max(wake - loop.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout)

    # ---------------------------------------------------------------- status

    def status_line(self) -> str:
        e = self.engine.counters
        return (f"market-maker {self.host}:{self.port} {'DOWN' if self.down else 'up'} | "
                f"sessions {len(self.sessions)} (connections {self.counters['connections']}, "
                f"drops {self.counters['drops']}) | orders {e['orders']} (open {self.engine.open_count}) | "
                f"fills {e['fills']} ({e['filled_qty']} sh) | rejects {e['rejects']} | cancels {e['cancels']} | "
                f"status requests {e['status_requests']} | reports sent {self.counters['reports_sent']}")


# ============================================================================================ the command


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("expected a fraction between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number >= 1")
    return value


def _schedule(text: str) -> tuple[float, float]:
    up, sep, down = text.partition("/")
    try:
        pair = (float(up), float(down))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected UP/DOWN seconds, got {text!r}") from None
    if not sep or pair[0] <= 0 or pair[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected UP/DOWN seconds, both > 0, got {text!r}")
    return pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Signals: SIGUSR1 toggles 'down' (refuse connections), SIGUSR2 drops every connection now. "
                     "See order_api/FIX.md for the FIX dialect.")
    parser.add_argument("--listen", type=parse_hostport, default=(DEFAULT_HOST, DEFAULT_PORT), metavar="HOST:PORT",
                        help=f"where to accept FIX 4.4 connections (default {DEFAULT_HOST}:{DEFAULT_PORT})")
    parser.add_argument("--comp-id", default=DEFAULT_COMP_ID,
                        help="our SenderCompID; initiators must target it (default %(default)s)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--quotes-url", default=DEFAULT_QUOTES_URL, metavar="URL",
                     help="snapshot service whose GET /v1/quotes gives the book to fill against "
                          "(default %(default)s, the HTTP port of `tickfan node`/`tickfan demo`)")
    src.add_argument("--static-quotes", metavar="SYM=BIDxSIZE/ASKxSIZE,...",
                     help="fill against this fixed book instead of the snapshot service, "
                          "e.g. AAPL=189.25x300/189.26x200")
    parser.add_argument("--quote-interval", type=_non_negative, default=0.25, metavar="SECONDS",
                        help="how often the snapshot service is polled for the symbols traded (default %(default)s)")
    parser.add_argument("--quote-max-age", type=_non_negative, default=5.0, metavar="SECONDS",
                        help="a quote older than this (service unreachable) counts as none: orders are rejected "
                             "(default %(default)s)")
    parser.add_argument("--fill-interval-ms", type=_non_negative, default=5.0, metavar="MS",
                        help="time between the executions of a partly filled order (default %(default)s)")
    parser.add_argument("--recheck-interval-ms", type=_non_negative, default=50.0, metavar="MS",
                        help="how often resting day orders are re-checked against the book (default %(default)s)")
    parser.add_argument("--max-orders", type=_positive_int, default=MAX_ORDERS, metavar="N",
                        help="orders kept in memory; the oldest finished ones are forgotten first "
                             "(default %(default)s)")
    parser.add_argument("--status-interval", type=_non_negative, default=5.0, metavar="SECONDS",
                        help="print a one-line status this often; 0 for never (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed the random choices (rejects, jitter) for a repeatable run")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every session start and end")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--latency-ms", type=_non_negative, default=0.0, metavar="MS",
                        help="delay before each execution report (default %(default)s)")
    faults.add_argument("--jitter-ms", type=_non_negative, default=0.0, metavar="MS",
                        help="extra random delay in [0, MS] before each execution report (default %(default)s)")
    faults.add_argument("--reject-rate", type=_rate, default=0.0, metavar="FRACTION",
                        help="fraction of new orders rejected with 'simulated reject' (default %(default)s)")
    faults.add_argument("--max-fill-qty", type=_positive_int, default=None, metavar="SHARES",
                        help="cap each execution at SHARES, forcing more partial fills (default: the displayed size)")
    faults.add_argument("--no-partial-fills", action="store_true",
                        help="fill the whole remainder in one execution whatever size the book shows")
    faults.add_argument("--drop-after", type=_positive_int, default=None, metavar="N",
                        help="abort each connection (no Logout) after it has sent N execution reports")
    faults.add_argument("--slow", action="store_true",
                        help="send no heartbeats and answer no TestRequests, so clients declare us dead")
    faults.add_argument("--down", action="store_true",
                        help="start 'down': refuse connections until SIGUSR1")
    faults.add_argument("--down-schedule", type=_schedule, default=None, metavar="UP/DOWN",
                        help="alternate: accept connections for UP seconds, then refuse them (and drop the "
                             "open ones) for DOWN seconds, e.g. 30/5")


def _faults_from(args: argparse.Namespace) -> Faults:
    return Faults(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, reject_rate=args.reject_rate,
                  partial_fills=not args.no_partial_fills, max_fill_qty=args.max_fill_qty,
                  drop_after=args.drop_after, slow=args.slow)


async def serve(args: argparse.Namespace) -> int:
    provider: QuoteProvider
    poller: asyncio.Task[None] | None = None
    if args.static_quotes:
        provider = StaticQuoteProvider(parse_static_quotes(args.static_quotes))
        source = f"static quotes ({', '.join(sorted(provider.quotes))})"
    else:
        http = HttpQuoteProvider(args.quotes_url, interval=args.quote_interval, max_age=args.quote_max_age)
        provider, source = http, f"quotes from {http.base_url}/v1/quotes"
        poller = asyncio.create_task(http.run(), name="quotes")
    host, port = args.listen
    mm = MarketMaker(provider, host=host, port=port, comp_id=args.comp_id, faults=_faults_from(args),
                     seed=args.seed, max_orders=args.max_orders, fill_interval=args.fill_interval_ms / 1000,
                     recheck_interval=args.recheck_interval_ms / 1000)
    try:
        await mm.start()
    except OSError as e:
        print(f"market-maker: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        if poller is not None:
            poller.cancel()
        return 1
    print(f"market maker {args.comp_id} listening on {mm.host}:{mm.port} (FIX 4.4), {source}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    background: list[asyncio.Task[None]] = []

    def toggle_down() -> None:
        background.append(asyncio.create_task(mm.set_down(not mm.down)))

    def drop_all() -> None:
        print(f"market-maker: dropped {mm.drop_connections()} connection(s)", flush=True)

    for sig, handler in ((signal.SIGINT, stop.set), (signal.SIGTERM, stop.set), (signal.SIGUSR1, toggle_down),
                         (signal.SIGUSR2, drop_all)):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(sig, handler)
    if args.down:
        await mm.set_down(True)

    async def flap(up: float, down: float) -> None:
        while True:
            await asyncio.sleep(up)
            await mm.set_down(True)
            print(f"market-maker: down for {down:g} s (--down-schedule)", flush=True)
            await asyncio.sleep(down)
            await mm.set_down(False)
            print("market-maker: up again", flush=True)

    async def report() -> None:
        while True:
            await asyncio.sleep(args.status_interval)
            line = mm.status_line()
            if isinstance(provider, HttpQuoteProvider) and provider.last_error:
                line += f" | quotes: {provider.last_error}"
            print(line, flush=True)

    if args.down_schedule is not None:
        background.append(asyncio.create_task(flap(*args.down_schedule)))
    if args.status_interval > 0:
        background.append(asyncio.create_task(report()))
    try:
        await stop.wait()
    finally:
        for t in background + ([poller] if poller is not None else []):
            t.cancel()
        await asyncio.gather(*background, *([poller] if poller is not None else []), return_exceptions=True)
        await mm.stop()
        print(mm.status_line(), flush=True)
    return 0


def main(args: argparse.Namespace) -> int:
    """Entry point for ``tickfan market-maker`` (see tickfan/cli.py)."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130


run = main  # the name the brief uses


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m venue.marketmaker", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))


__all__ = ["BookQuote", "Faults", "HttpQuoteProvider", "MarketMaker", "MatchingEngine", "QuoteProvider",
           "StaticQuoteProvider", "add_arguments", "main", "parse_static_quotes", "run", "serve"]
