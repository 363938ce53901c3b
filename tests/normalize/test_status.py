"""Trading status in the books: every ITCH status event applied as the spec says, identically by the per-message
``Books`` and the batched ``KernelBooks``, in every form it leaves in, and restored by a GLIMPSE rebuild."""

from __future__ import annotations

import numpy as np
import orjson

from ingest import messages as im
from ingest.itch import decode
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.row import FIELD_NAMES
from normalize.status import MarketStatusView, SymbolStatusView, read_status
from tests.conftest import directory
from venue.simulator import ExchangeSimulator
from venue.status import StatusConfig

L = 1
NS = 1_000_000_000


def books_with(*msgs: im.Message) -> Books:
    b = Books()
    b.apply_batch([directory(L, "TSLA"), directory(2, "NVDA"), *msgs])
    return b


def status(b: Books, loc: int = L) -> SymbolStatusView:
    return read_status(b, b.symbol_of, loc)


def test_a_luld_pause_as_nasdaq_sends_it() -> None:
    b = books_with(im.TradingAction(L, 0, 10, "TSLA", "T", " ", ""))
    seq, version = int(b.seq[L]), status(b).version
    b.apply(im.TradingAction(L, 0, 20, "TSLA", "P", " ", "LUDP"))
    b.apply(im.LuldAuctionCollar(L, 0, 21, "TSLA", 2_500_000, 2_625_000, 2_375_000, 1))
    s = status(b)
    assert (s.trading_state, s.reason, s.luld_reference_price, s.luld_upper_price, s.luld_lower_price,
            s.luld_extensions, s.event_time_ns) == ("P", "LUDP", 2_500_000, 2_625_000, 2_375_000, 1, 21)
    assert s.version == version + 2 and b.halted[L] and b.seq[L] == seq + 1  # one quote change: halted, P LUDP
    b.apply(im.TradingAction(L, 0, 30, "TSLA", "T", " ", ""))
    s = status(b)
    assert (s.trading_state, s.reason, s.luld_reference_price, s.luld_extensions) == ("T", "", 0, 0)
    assert not b.halted[L] and s.version == version + 3
    # a new reason while halted is a change of the quote too (clients see why)
    b.apply(im.TradingAction(L, 0, 40, "TSLA", "H", " ", "T1"))
    seq = int(b.seq[L])
    b.apply(im.TradingAction(L, 0, 41, "TSLA", "H", " ", "T2"))
    assert b.seq[L] == seq + 1 and status(b).reason == "T2"


def test_operational_halt_reg_sho_ipo_and_the_market() -> None:
    b = books_with(im.OperationalHalt(L, 0, 5, "TSLA", "B", "H"))  # on BX: not this market's halt
    assert not b.halted[L] and b.counters["operational_halt_elsewhere"] == 1
    b.apply(im.OperationalHalt(L, 0, 6, "TSLA", "Q", "H"))
    assert b.halted[L] and status(b).operational_halt
    b.apply(im.OperationalHalt(L, 0, 7, "TSLA", "Q", "T"))
    assert not b.halted[L]
    b.apply(im.RegSho(2, 0, 8, "NVDA", "1"))
    b.apply(im.IpoQuotingPeriod(2, 0, 9, "NVDA", 36_000, "A", 1_900_000))
    s = status(b, 2)
    assert (s.reg_sho, s.ipo_release_time_ns, s.ipo_qualifier, s.ipo_price) == ("1", 36_000 * NS, "A", 1_900_000)
    assert MarketStatusView.of(b.market) == MarketStatusView(0, "", False, 0, 0, 0, "", 0)
    b.apply_batch([im.SystemEvent(0, 0, 10, "O"), im.SystemEvent(0, 0, 11, "S"), im.SystemEvent(0, 0, 12, "Q")])
    assert MarketStatusView.of(b.market).market_open
    b.apply_batch([im.MwcbDeclineLevel(0, 0, 13, 465_000_000_000, 435_000_000_000, 400_000_000_000),
                   im.MwcbStatus(0, 0, 14, "2"), im.SystemEvent(0, 0, 15, "M")])
    assert MarketStatusView.of(b.market) == MarketStatusView(6, "M", False, 46_500_000, 43_500_000, 40_000_000,
                                                             "2", 15)
    # bad codes are counted and change nothing
    before = (b.market.copy(), status(b, 2))
    b.apply_batch([im.SystemEvent(0, 0, 16, "X"), im.MwcbStatus(0, 0, 17, "4"), im.RegSho(2, 0, 18, "NVDA", "9"),
                   im.IpoQuotingPeriod(2, 0, 19, "NVDA", 1, "Z", 1), im.OperationalHalt(2, 0, 20, "NVDA", "Q", "?"),
                   im.TradingAction(2, 0, 21, "NVDA", "Z", " ", "")])
    assert (b.market == before[0]).all() and status(b, 2) == before[1]
    assert b.counters["bad_status"] == 5 and b.counters["bad_trading_state"] == 1


def test_every_form_comes_back() -> None:
    b = books_with(im.TradingAction(L, 0, 20, "TSLA", "P", " ", "LUDP"),
                   im.LuldAuctionCollar(L, 0, 21, "TSLA", 2_500_000, 2_625_000, 2_375_000, 0),
                   im.SystemEvent(0, 0, 12, "Q"), im.MwcbDeclineLevel(0, 0, 13, 465_000_000_000, 1, 2))
    s, m = status(b), MarketStatusView.of(b.market)
    assert SymbolStatusView.from_pb(s.to_pb()) == s and MarketStatusView.from_pb(m.to_pb()) == m
    for fields in (s.hash_fields(), {k.encode(): v.encode() for k, v in s.hash_fields().items()},
                   orjson.loads(orjson.dumps(s.record()))):
        assert SymbolStatusView.parse(fields) == s
    for fields in (m.hash_fields(), {k.encode(): v.encode() for k, v in m.hash_fields().items()},
                   orjson.loads(orjson.dumps(m.record()))):
        assert MarketStatusView.parse(fields) == m
    assert s.record()["luld_upper_price"] == "262.5000" and m.record()["mwcb_level1"] == "4650.0000"
    copy = Books()
    s.write(copy, 7)
    assert read_status(copy, [None] * 8, 7) == s._replace(symbol=None)


def session(seed: int) -> list[bytes]:
    """A generated session with every status event kind: a fast clock (0.25 s a call), pauses every 2 s, another
    event every 0.5 s, a circuit breaker breach, then the end of market hours."""
    now = [34_200 * NS]

    def clock() -> int:
        return now[0]

    sim = ExchangeSimulator(60, seed=seed, clock=clock,
                            status=StatusConfig(luld_every=2.0, luld_pause=1.0, events_every=0.5, breach=True))
    raw: list[bytes] = []
    for i in range(40):
        if i == 38:
            sim.close_market()
        raw += sim.generate_encoded(300)
        now[0] += NS // 4
    return raw


def test_per_message_and_batched_books_agree_on_a_session_with_every_status_event() -> None:
    raw = session(3)
    kinds = {m[0] for m in raw}
    assert set(b"SHYJKVWh") <= kinds
    ref = Books()
    ref.apply_batch([decode(m) for m in raw])
    fast = KernelBooks(order_capacity=16, level_capacity=16)
    cuts = sorted({0, len(raw), *np.random.default_rng(3).integers(0, len(raw), 6).tolist()})
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        fast.apply_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in raw[lo:hi]))
    for name in FIELD_NAMES:
        assert np.array_equal(getattr(ref, name), getattr(fast, name)), name
    assert ref.market.tolist() == fast.market.tolist() and ref.counters == fast.counters
    assert ref.status_since(0) == fast.status_since(0)  # the same events, in the same order
    market = MarketStatusView.of(ref.market)
    assert (market.system_event, market.market_open, market.mwcb_breached) == ("M", False, "1")
    # the pauses: P with its collar, then T, on TSLA and NVDA in turn
    events, _, lost = ref.status_since(0)
    paused = [(loc, v.luld_upper_price > 0) for loc, v in events
              if isinstance(v, SymbolStatusView) and v.trading_state == "P" and v.reason == "LUDP"]
    assert lost == 0 and {loc for loc, _ in paused} == {1, 2} and any(collar for _, collar in paused)


def test_a_glimpse_rebuild_restores_the_status() -> None:
    now = [34_200 * NS]
    sim = ExchangeSimulator(40, seed=4, clock=lambda: now[0],
                            status=StatusConfig(luld_every=3.0, luld_pause=2.0, events_every=0.4))
    live = Books()
    for _ in range(14):  # the second pause starts on the last call
        live.apply_batch([decode(m) for m in sim.generate_encoded(200)])
        now[0] += NS // 4
    assert sim.status.paused is not None  # mid-pause, with a Reg SHO test, an IPO and an operational halt out
    rebuilt = Books()
    rebuilt.rebuild([decode(m) for m in sim.snapshot()])
    for loc in range(1, 41):
        a, b = status(live, loc), status(rebuilt, loc)
        assert a._replace(version=0, event_time_ns=0) == b._replace(version=0, event_time_ns=0), loc
        assert live.halted[loc] == rebuilt.halted[loc]
    ma, mb = MarketStatusView.of(live.market), MarketStatusView.of(rebuilt.market)
    assert ma._replace(version=0, event_time_ns=0) == mb._replace(version=0, event_time_ns=0)


def test_status_times_are_unix_ns_like_every_stamp_the_books_keep() -> None:
    import datetime as dt

    from vocab.clock import eastern_midnight_ns

    day = dt.date(2026, 3, 9)  # the Monday after the spring DST change
    midnight = eastern_midnight_ns(day)
    for books in (Books(session_date=day), KernelBooks(session_date=day)):
        books.apply_batch([directory(L, "TSLA"), im.SystemEvent(0, 0, 5, "Q"),
                           im.TradingAction(L, 0, 34_200 * NS, "TSLA", "P", " ", "LUDP"),
                           im.IpoQuotingPeriod(L, 0, 34_201 * NS, "TSLA", 36_000, "A", 1)])
        s = status(books)
        assert s.event_time_ns == midnight + 34_201 * NS and s.ipo_release_time_ns == midnight + 36_000 * NS
        assert books.exchange_time[L] == midnight + 34_200 * NS  # the pause changed the quote then
        assert MarketStatusView.of(books.market).event_time_ns == midnight + 5


def test_the_market_phase_from_the_system_events() -> None:
    def phase(event: str, market_open: bool = False) -> str:
        return MarketStatusView(1, event, market_open, 0, 0, 0, "", 0).phase

    assert [phase("O"), phase("S"), phase("Q", True), phase("M"), phase("E"), phase("C"), phase("")] == [
        "closed", "pre_market", "open", "after_hours", "closed", "closed", "closed"]
