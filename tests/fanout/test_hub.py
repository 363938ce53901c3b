"""Conflation and sharing: newest state wins, slow subscribers skip to it, frames are shared."""

from __future__ import annotations

from collections.abc import Sequence

from fanout.hub import Hub, Subscriber
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, make_books

NOW = 10**12  # the flush time passed in (ns on the books' exchange clock)


def quotes_of(frames: Sequence[bytes | str]) -> list[pb.Quote]:
    out: list[pb.Quote] = []
    for f in frames:
        assert isinstance(f, bytes)
        out.extend(pb.ServerMessage.FromString(f).quotes.quotes)
    return out


def test_two_changes_in_one_flush_give_one_update_with_the_newest() -> None:
    books = make_books()
    hub = Hub(books, 16)
    a = Subscriber(1)
    hub.subscribe(a, "quotes", [1])
    hub.flush(NOW)
    bump(books, 1, 1000500)
    bump(books, 1, 1000600)
    result = hub.flush(NOW)
    assert len(result) == 1
    (q,) = quotes_of(result[0][1])
    assert q.bid_price == 1000600 and q.seq == books.seq[1]
    assert hub.flush(NOW) == []  # nothing changed since


def test_a_paused_subscriber_later_gets_only_the_newest() -> None:
    books = make_books()
    hub = Hub(books, 16)
    slow, fast = Subscriber(1), Subscriber(2)
    for s in (slow, fast):
        hub.subscribe(s, "quotes", [1, 2])
    slow.writable = False
    for price in (1000500, 1000600, 1000700):
        bump(books, 1, price)
        got = {s.id for s, _ in hub.flush(NOW)}
        assert got == {2}
    assert hub.stats.conflated_skips >= 3
    slow.writable = True
    bump(books, 2, 2000500)
    result = dict((s.id, f) for s, f in hub.flush(NOW))
    qs = {q.symbol: q for q in quotes_of(result[1])}
    assert set(qs) == {"AAPL", "TSLA"} and qs["AAPL"].bid_price == 1000700
    assert [q.symbol for q in quotes_of(result[2])] == ["TSLA"]


def test_identical_owed_sets_share_one_frame_object() -> None:
    books = make_books()
    hub = Hub(books, 16)
    subs = [Subscriber(i) for i in range(5)]
    for s in subs:
        hub.subscribe(s, "quotes", [1])
    bump(books, 1, 1000500)
    frames = [f[0] for _, f in hub.flush(NOW)]
    assert len(frames) == 5 and all(f is frames[0] for f in frames)
    assert hub.stats.symbols_encoded == 1


def test_snapshot_then_no_repeat_of_the_same_version() -> None:
    books = make_books()
    hub = Hub(books, 16)
    s = Subscriber(1)
    bump(books, 1, 1000500)  # changed before the first flush sees it
    hub.subscribe(s, "quotes", [1])
    snap = pb.ServerMessage.FromString(hub.snapshot(s, [1]))  # type: ignore[arg-type]
    assert snap.snapshot.quotes[0].seq == books.seq[1]
    assert hub.flush(NOW) == []  # the snapshot already carried that version
    bump(books, 1, 1000600)
    (q,) = quotes_of(hub.flush(NOW)[0][1])
    assert q.seq > snap.snapshot.quotes[0].seq


def test_unsubscribed_symbols_stop_and_trades_channel_gets_prints() -> None:
    from ingest.messages import Trade

    books = make_books()
    hub = Hub(books, 16)
    s = Subscriber(1)
    hub.subscribe(s, "quotes", [1])
    hub.subscribe(s, "trades", [2])
    hub.unsubscribe(s, "quotes", [1])
    bump(books, 1, 1000500)
    books.apply(Trade(2, 0, 9, 0, "B", 300, "TSLA", 2000050, 77))
    result = hub.flush(NOW)
    assert len(result) == 1
    (frame,) = result[0][1]
    msg = pb.ServerMessage.FromString(frame)  # type: ignore[arg-type]
    assert msg.WhichOneof("kind") == "trades"
    (t,) = msg.trades.trades
    assert (t.symbol, t.price, t.size, t.match_number) == ("TSLA", 2000050, 300, 77)


def test_depth_channel_conflates_level_changes_below_the_top() -> None:
    from ingest.messages import AddOrder

    books = make_books()
    hub = Hub(books, 16)
    s = Subscriber(1)
    hub.subscribe(s, "depth", [1])
    snap = pb.ServerMessage.FromString(hub.snapshot(s, [1], "depth"))  # type: ignore[arg-type]
    assert snap.depth.snapshot and snap.depth.books[0].symbol == "AAPL"
    top_seq = int(books.seq[1])
    books.apply(AddOrder(1, 0, 9, 5000, "B", 70, "AAPL", 990000))  # second level: top of book unchanged
    books.apply(AddOrder(1, 0, 9, 5001, "B", 30, "AAPL", 990000))
    assert books.seq[1] == top_seq
    ((sub, frames),) = hub.flush(NOW)
    (msg,) = [pb.ServerMessage.FromString(f) for f in frames]  # type: ignore[arg-type]
    assert msg.WhichOneof("kind") == "depth" and not msg.depth.snapshot
    (d,) = msg.depth.books
    assert [(lv.price, lv.size) for lv in d.bids] == [(1000000, 100), (990000, 100)]
    assert d.seq > snap.depth.books[0].seq


def test_latency_is_sampled_against_the_time_passed_in() -> None:
    books = make_books()
    hub = Hub(books, 16)
    s = Subscriber(1)
    hub.subscribe(s, "quotes", [1, 2])
    hub.flush(NOW)
    bump(books, 1, 1000500, ts=NOW - 3_000_000)
    bump(books, 2, 2000500, ts=NOW - 5_000_000)
    hub.flush(NOW)
    assert hub.latency_count == 2
    assert sorted(hub.latency_ns[:2].tolist()) == [3_000_000, 5_000_000]
    p50, p99 = hub.latency_percentiles()
    assert p50 == 4.0 and 4.0 < p99 <= 5.0  # milliseconds


def test_a_windowed_flush_gives_only_the_windows_subscribers_and_the_rest_keep_owing_the_newest() -> None:
    from ingest.messages import Trade

    books = make_books()
    hub = Hub(books, 16)
    subs = [Subscriber(i) for i in range(4)]  # slots 0..3
    for s in subs:
        hub.subscribe(s, "quotes", [1])
        hub.subscribe(s, "trades", [2])
    bump(books, 1, 1000500)
    books.apply(Trade(2, 0, 9, 0, "B", 300, "TSLA", 2000050, 77))
    first = hub.flush(NOW, window=(0, 2))
    kinds = {(s.id, pb.ServerMessage.FromString(f).WhichOneof("kind")) for s, frames in first  # type: ignore[arg-type]
             for f in frames}
    # the window's subscribers get the quote; every trades watcher gets the prints, in the pass's first window
    assert kinds == {(0, "quotes"), (1, "quotes"), (0, "trades"), (1, "trades"), (2, "trades"), (3, "trades")}
    bump(books, 1, 1000600)  # moved again before the second window's turn
    second = hub.flush(NOW, window=(2, 4))
    assert sorted(s.id for s, _ in second) == [2, 3]  # no prints again: they went out with the first window
    for _, frames in second:
        (q,) = quotes_of(frames)
        assert q.bid_price == 1000600  # the newest, as the books are at this window's turn
    third = hub.flush(NOW, window=(0, 2))
    assert sorted(s.id for s, _ in third) == [0, 1]
    assert [quotes_of(f)[0].bid_price for _, f in third] == [1000600, 1000600]
    assert hub.flush(NOW, window=(2, 4)) == [] and hub.flush(NOW) == []
