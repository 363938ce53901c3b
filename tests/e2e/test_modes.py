"""Every channel in every mode: one list of client assertions, run against each way a node gets its books.

Modes: the node reads its own feed (``tickfan demo``); the books are shared memory from partitioned ingest
workers, served by two fan-out workers on one port (``--partitions 2 --fanout-workers 2``); a ``tickfan node
--from-redis`` edge serves what another node (``tickfan demo --redis``) publishes to a private Redis.

Each mode starts once per module (its demo is stopped as soon as its client is done, so the modes do not load
the machine together). One real WebSocket client subscribes to quotes, depth, trades, bars:1s, bars:1m and status
for a few symbols and records everything until it has a final 1 s bar and trade prints of each symbol; then it
reconnects with its resume token. The tests below check that record, the same way for every mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import websockets

from tests.conftest import PrivateRedis
from tests.e2e.conftest import Demo, Launch, _factory
from tickfan_proto import stream_pb2 as pb

pytestmark = pytest.mark.timeout(240)

SYMBOLS = ["TSLA", "NVDA", "AAPL"]
CHANNELS = ["quotes", "depth", "trades", "bars:1s", "bars:1m", "status"]
MODES = ["own-feed", "shared-memory", "redis-edge"]
DEMO = ("--rate", "2000", "--duration", "120", "--no-rewinder")
N_SYMBOLS = 50
COLLECT = 40.0  # seconds a client may take to see everything (a loaded machine)


@dataclass
class Seen:
    """What one client received, in order, and what its reconnection with the resume token got."""

    mode: str
    messages: list[pb.ServerMessage] = field(default_factory=list)
    token: str = ""
    resumed: list[pb.ServerMessage] = field(default_factory=list)
    # a Redis edge's origin: what a client of the publishing node got meanwhile (quotes, depth, trades)
    origin: list[pb.ServerMessage] = field(default_factory=list)

    def of(self, kind: str) -> list[pb.ServerMessage]:
        return [m for m in self.messages if m.WhichOneof("kind") == kind]


def _kind(m: pb.ServerMessage) -> str:
    return m.WhichOneof("kind") or ""


def _done(seen: Seen) -> bool:
    """Every symbol has: a quote update, a depth update, prints, a final 1 s bar with trades."""
    quotes = {q.symbol for m in seen.of("quotes") for q in m.quotes.quotes}
    depth = {d.symbol for m in seen.of("depth") if not m.depth.snapshot for d in m.depth.books}
    trades = {t.symbol for m in seen.of("trades") for t in m.trades.trades}
    finals = {b.symbol for m in seen.of("bars") for b in m.bars.bars if b.state == "final" and b.trades}
    return all(s == set(SYMBOLS) for s in (quotes, depth, trades, finals))


async def _recv(conn: websockets.ClientConnection, until: float) -> pb.ServerMessage:
    raw = await asyncio.wait_for(conn.recv(), max(0.1, until - time.monotonic()))
    assert isinstance(raw, bytes)
    return pb.ServerMessage.FromString(raw)


async def watch(ws: str, seen: Seen) -> None:
    """Subscribe to every channel and record until ``_done`` (or ``COLLECT`` s); then disconnect, let prints
    pass, and reconnect with the newest resume token, recording until a Recovered for each symbol."""
    async with websockets.connect(ws) as conn:
        await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=SYMBOLS, channels=CHANNELS))
                        .SerializeToString())
        end = time.monotonic() + COLLECT
        while time.monotonic() < end and not _done(seen):
            m = await _recv(conn, end)
            seen.messages.append(m)
            if _kind(m) == "subscribed" and m.subscribed.resume_token:
                seen.token = m.subscribed.resume_token
            elif _kind(m) == "heartbeat" and m.heartbeat.resume_token:
                seen.token = m.heartbeat.resume_token
        # the newest token: one more heartbeat (at most a second or so away)
        beat_end = time.monotonic() + 10
        while time.monotonic() < beat_end:
            m = await _recv(conn, beat_end)
            seen.messages.append(m)
            if _kind(m) == "heartbeat" and m.heartbeat.resume_token:
                seen.token = m.heartbeat.resume_token
                break
    await asyncio.sleep(1.0)  # prints go by while the client is away
    async with websockets.connect(ws) as conn:
        await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(resume_token=seen.token)).SerializeToString())
        end = time.monotonic() + 20
        while time.monotonic() < end:
            m = await _recv(conn, end)
            seen.resumed.append(m)
            if len({r.recovered.symbol for r in seen.resumed if _kind(r) == "recovered"}) == len(SYMBOLS):
                break


async def mirror(ws: str, out: list[pb.ServerMessage], stop: asyncio.Event) -> None:
    """A client of the origin node, recording quotes, depth and trades until ``stop``."""
    async with websockets.connect(ws) as conn:
        await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=SYMBOLS, channels=["quotes", "depth",
                                                                                          "trades"]))
                        .SerializeToString())
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(conn.recv(), 0.5)
            except TimeoutError:
                continue
            assert isinstance(raw, bytes)
            out.append(pb.ServerMessage.FromString(raw))


async def watch_beside_origin(edge: str, origin: str, seen: Seen) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(mirror(origin, seen.origin, stop))
    try:
        await watch(edge, seen)
    finally:
        stop.set()
        await task


def _redis_edge(launch: Launch, redis: PrivateRedis) -> tuple[Demo, Demo]:
    url = f"redis://127.0.0.1:{redis.port}/0"
    origin = launch(*DEMO, "--redis", url, symbols=N_SYMBOLS)
    return origin, launch("--from-redis", url, command="node", symbols=N_SYMBOLS)


@pytest.fixture(scope="module", params=MODES)
def seen(request: pytest.FixtureRequest) -> Iterator[Seen]:
    """One mode's demo, one client's record of it; the demo is stopped before the next mode starts."""
    mode: str = request.param
    factory = _factory()
    launch = next(factory)
    redis: PrivateRedis | None = None
    try:
        record = Seen(mode)
        if mode == "own-feed":
            asyncio.run(watch(launch(*DEMO, symbols=N_SYMBOLS).ws, record))
        elif mode == "shared-memory":
            demo = launch(*DEMO, "--partitions", "2", "--fanout-workers", "2", symbols=N_SYMBOLS)
            asyncio.run(watch(demo.ws, record))
        else:
            redis = PrivateRedis().start()
            origin, edge = _redis_edge(launch, redis)
            asyncio.run(watch_beside_origin(edge.ws, origin.ws, record))
    finally:
        for _ in factory:  # stops every process the mode started
            pass
        if redis is not None:
            redis.__exit__(None, None, None)
    yield record


# ---------------------------------------------------------------------------------------------------- the list


def test_the_subscription_is_confirmed_first_with_a_resume_token(seen: Seen) -> None:
    first = seen.messages[0]
    assert _kind(first) == "subscribed", [_kind(m) for m in seen.messages[:5]]
    assert set(first.subscribed.symbols) == set(SYMBOLS) and set(first.subscribed.channels) == set(CHANNELS)
    assert first.subscribed.resume_token


def test_every_channel_is_complete(seen: Seen) -> None:
    assert _done(seen), f"{seen.mode}: kinds seen {sorted({_kind(m) for m in seen.messages})}"


def test_quotes_snapshot_first_then_increasing_versions(seen: Seen) -> None:
    quotes = [m for m in seen.messages if _kind(m) in ("snapshot", "quotes")]
    assert _kind(quotes[0]) == "snapshot"
    snap = {q.symbol: q for q in quotes[0].snapshot.quotes}
    assert set(snap) == set(SYMBOLS)
    # the snapshot is the book as it stands, not an empty row waiting for the first update
    assert all(q.seq > 0 and q.bid_price > 0 and q.ask_price > q.bid_price for q in snap.values()), snap
    last = {s: q.seq for s, q in snap.items()}
    for m in quotes[1:]:
        assert _kind(m) == "quotes"
        for q in m.quotes.quotes:
            assert q.seq > last[q.symbol], f"{q.symbol} went from {last[q.symbol]} to {q.seq}"
            last[q.symbol] = q.seq
            assert q.bid_price > 0 and q.ask_price > q.bid_price and abs(time.time_ns() - q.exchange_time_ns) < 6e11


def test_depth_snapshot_first_then_increasing_versions_sorted_levels(seen: Seen) -> None:
    depth = seen.of("depth")
    assert depth[0].depth.snapshot and not any(m.depth.snapshot for m in depth[1:])
    snap = {d.symbol: d for d in depth[0].depth.books}
    assert set(snap) == set(SYMBOLS)
    assert all(d.seq > 0 and d.bids and d.asks for d in snap.values()), snap
    last: dict[str, int] = {}
    for m in depth:
        for d in m.depth.books:
            assert d.seq > last.get(d.symbol, 0), f"{d.symbol} depth went from {last.get(d.symbol)} to {d.seq}"
            last[d.symbol] = d.seq
            bids, asks = [lv.price for lv in d.bids], [lv.price for lv in d.asks]
            assert bids == sorted(bids, reverse=True) and len(set(bids)) == len(bids)
            assert asks == sorted(asks) and len(set(asks)) == len(asks)
            assert all(lv.size > 0 for lv in (*d.bids, *d.asks))
            assert len(bids) <= 10 and len(asks) <= 10
            if bids and asks:
                assert bids[0] < asks[0], f"{d.symbol} depth crossed"


def test_trade_prints_with_consecutive_trade_seq(seen: Seen) -> None:
    last: dict[str, int] = {}
    for m in seen.of("trades"):
        for t in m.trades.trades:
            assert t.trade_seq > last.get(t.symbol, 0), f"{t.symbol} trade_seq {t.trade_seq} after {last}"
            last[t.symbol] = t.trade_seq
            assert t.price > 0 and t.size > 0 and t.match_number > 0
    assert set(last) == set(SYMBOLS)


def test_bars_snapshots_first_then_a_final_one_second_bar(seen: Seen) -> None:
    bars = seen.of("bars")
    assert bars[0].bars.snapshot and bars[1].bars.snapshot  # one per bars channel
    assert not any(m.bars.snapshot for m in bars[2:])
    newest: dict[tuple[str, str], int] = {}
    finals: set[str] = set()
    minutes: set[str] = set()  # the open minute's bar (no minute closes in the test's time)
    for m in bars:
        for b in m.bars.bars:
            width = {"1s": 1_000_000_000, "1m": 60_000_000_000}[b.interval]
            assert b.start_time_ns % width == 0
            if b.state != "revised":
                key = (b.symbol, b.interval)
                assert b.start_time_ns >= newest.get(key, 0), f"a {key} bar went back in time"
                newest[key] = b.start_time_ns
            if b.trades:
                assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.volume > 0
            if b.interval == "1s" and b.state == "final" and b.trades:
                finals.add(b.symbol)
            if b.interval == "1m" and b.trades:
                minutes.add(b.symbol)
    assert finals == set(SYMBOLS) and minutes == set(SYMBOLS)


def test_status_snapshot_names_every_symbol_and_the_market(seen: Seen) -> None:
    status = seen.of("status")
    snap = status[0].status
    assert snap.snapshot and snap.market.market_open
    states = {s.symbol: s for s in snap.symbols}
    assert set(states) == set(SYMBOLS)
    assert all(s.trading_state == "T" and s.version > 0 for s in states.values()), states


def test_resume_replays_the_missed_prints_and_says_recovered(seen: Seen) -> None:
    assert seen.token
    verdicts = {m.recovered.symbol: m.recovered for m in seen.resumed if _kind(m) == "recovered"}
    assert set(verdicts) == set(SYMBOLS), [_kind(m) for m in seen.resumed]
    assert all(r.verdict == "complete" for r in verdicts.values()), verdicts
    # with two fan-out workers on one port, the other may answer: it says so (a node epoch is per process)
    assert seen.mode == "shared-memory" or not any(r.epoch_changed for r in verdicts.values()), verdicts
    # the replay continues exactly where the first connection stopped
    sent: dict[str, int] = {}
    for m in seen.of("trades"):
        for t in m.trades.trades:
            sent[t.symbol] = t.trade_seq
    replayed: dict[str, list[int]] = {}
    done: set[str] = set()  # a symbol's replay ends with its Recovered; live prints may follow
    for m in seen.resumed:
        if _kind(m) == "recovered":
            done.add(m.recovered.symbol)
        for t in m.trades.trades:
            if t.symbol not in done:
                replayed.setdefault(t.symbol, []).append(t.trade_seq)
    for sym, seqs in replayed.items():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{sym} replay has holes: {seqs}"
        assert seqs[0] == sent.get(sym, 0) + 1, f"{sym} replay starts at {seqs[0]} after {sent.get(sym)}"
    # and the resumed connection gets snapshots of its state channels again
    assert {_kind(m) for m in seen.resumed} >= {"snapshot", "depth", "status", "bars"}


def test_a_redis_edge_sends_what_its_origin_node_sends(seen: Seen) -> None:
    """Where both clients got the same version of a symbol, they got the same message (a depth's exchange time and
    flags are the row's at the node's flush, so its levels are compared)."""
    if seen.mode != "redis-edge":
        pytest.skip("only a Redis edge has an origin node to compare with")

    def versions(messages: list[pb.ServerMessage]) -> dict[str, dict[tuple[str, int], object]]:
        out: dict[str, dict[tuple[str, int], object]] = {"quotes": {}, "depth": {}, "trades": {}}
        for m in messages:
            for q in (*m.snapshot.quotes, *m.quotes.quotes):
                out["quotes"][(q.symbol, q.seq)] = q
            for d in m.depth.books:
                out["depth"][(d.symbol, d.seq)] = (list(d.bids), list(d.asks))
            for t in m.trades.trades:
                out["trades"][(t.symbol, t.trade_seq)] = t
        return out

    edge, origin = versions(seen.messages), versions(seen.origin)
    for channel in ("quotes", "depth", "trades"):
        common = edge[channel].keys() & origin[channel].keys()
        assert common, f"no {channel} version seen by both clients"
        assert all(edge[channel][k] == origin[channel][k] for k in common), channel
