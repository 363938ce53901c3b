"""The bars channels in the hub (pure): conflation per flush, nothing dropped for a stuck client, never back."""

from __future__ import annotations

from fanout.hub import Hub, Subscriber
from ingest.messages import BrokenTrade, Trade
from normalize import Books
from normalize.bar_feed import BarFeed
from normalize.bar_types import SECOND
from tests.conftest import directory
from tickfan_proto import stream_pb2 as pb

T0 = 100 * SECOND


def setup() -> tuple[Books, BarFeed, Hub]:
    books = Books()
    feed = BarFeed(books)
    books.apply_batch([directory(1, "AAPL"), directory(2, "MSFT")])
    return books, feed, Hub(books, bars=feed)


def trade(books: Books, t: int, price: int, match: int, loc: int = 1) -> None:
    books.apply(Trade(loc, 0, t, 0, "B", 100, "AAPL" if loc == 1 else "MSFT", price, match))


def bars_of(hub: Hub, sub: Subscriber) -> list[pb.Bar]:
    out: list[pb.Bar] = []
    for s, frames in hub.flush(0, send_time_ns=7):
        if s is sub:
            for f in frames:
                assert isinstance(f, bytes)
                msg = pb.ServerMessage.FromString(f)
                assert msg.bars.send_time_ns == 7 and not msg.bars.snapshot
                out += msg.bars.bars
    return out


def test_updates_conflate_per_flush_and_finals_are_kept() -> None:
    books, feed, hub = setup()
    sub = Subscriber(1)
    hub.subscribe(sub, "bars:1s", [1])
    for i in range(5):  # five prints in one second: five updates emitted, one sent
        trade(books, T0 + i, 1_000_000 + i, i + 1)
        feed.pump()
    got = bars_of(hub, sub)
    assert [(b.state, b.trades, b.close) for b in got] == [("update", 5, 1_000_004)]
    trade(books, T0 + SECOND, 1_000_100, 6)  # the next second: the first bar's final, then the new update
    trade(books, T0 + SECOND + 1, 1_000_200, 7)
    feed.pump()
    got = bars_of(hub, sub)
    assert [(b.state, b.start_time_ns, b.trades) for b in got] == [("final", T0, 5), ("update", T0 + SECOND, 2)]
    assert hub.bars.stats.updates_conflated >= 5
    assert bars_of(hub, sub) == []  # nothing new


def test_a_stuck_client_keeps_its_finals_and_revisions_and_gets_the_newest_update() -> None:
    books, feed, hub = setup()
    stuck = Subscriber(1)
    hub.subscribe(stuck, "bars:1s", [1])
    stuck.writable = False
    for i in range(4):  # four 1 s bars: three close while the client cannot be written to
        trade(books, T0 + i * SECOND, 1_000_000 + i, i + 1)
        feed.pump()
        assert bars_of(hub, stuck) == []
    books.apply(BrokenTrade(1, 0, T0 + 3 * SECOND + 5, 1))  # the first bar's only print: revised, emptied
    feed.pump()
    assert bars_of(hub, stuck) == []
    stuck.writable = True
    got = bars_of(hub, stuck)
    assert [(b.state, b.start_time_ns - T0, b.version) for b in got] == [
        ("final", 0, 0), ("final", SECOND, 0), ("final", 2 * SECOND, 0), ("update", 3 * SECOND, 0), ("revised", 0, 1)]
    assert got[4].volume == 0 and got[4].trades == 0  # its only print was broken


def test_subscribing_snapshots_the_latest_closed_and_open_bar_and_nothing_older_follows() -> None:
    books, feed, hub = setup()
    for i in range(3):
        trade(books, T0 + i * SECOND, 1_000_000 + i, i + 1)
    feed.pump()  # emitted: two finals and updates, not yet flushed
    late = Subscriber(2)
    hub.subscribe(late, "bars:1s", [1])
    snap = pb.ServerMessage.FromString(hub.snapshot(late, [1], "bars:1s", send_time_ns=9))  # type: ignore[arg-type]
    assert snap.bars.snapshot and snap.bars.send_time_ns == 9
    assert [(b.state, b.start_time_ns - T0) for b in snap.bars.bars] == [("final", SECOND), ("update", 2 * SECOND)]
    assert bars_of(hub, late) == []  # what was emitted before the snapshot is in it, or older: not sent
    trade(books, T0 + 2 * SECOND + 1, 1_000_009, 9)
    feed.pump()
    assert [(b.state, b.trades) for b in bars_of(hub, late)] == [("update", 2)]
    hub.unsubscribe(late, "bars:1s", [1])
    trade(books, T0 + 3 * SECOND, 1_000_010, 10)
    feed.pump()
    assert bars_of(hub, late) == [] and not hub.bars.watchers
