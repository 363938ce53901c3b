"""The status channel in the hub (pure): the current state first, then every event in order, binary and JSON
alike; a subscriber that could not be written gets the state again, not a backlog."""

from __future__ import annotations

from fanout.hub import Hub, Subscriber
from ingest import messages as im
from tickfan_proto import stream_pb2 as pb

from .conftest import decode, make_books


def flush(hub: Hub, sub: Subscriber) -> list[pb.ServerMessage]:
    return flush_all(hub).get(sub.id, [])


def flush_all(hub: Hub) -> dict[int, list[pb.ServerMessage]]:
    return {s.id: [decode(f) for f in frames] for s, frames in hub.flush(0)}


def test_snapshot_then_every_event_in_order_binary_and_json() -> None:
    books = make_books()  # in market hours
    hub = Hub(books)
    binary, text = Subscriber(1), Subscriber(2, json=True)
    for sub in (binary, text):
        hub.subscribe(sub, "status", [1, 2])
        snap = decode(hub.snapshot(sub, [1, 2], "status")).status
        assert snap.snapshot and snap.market.system_event == "Q" and snap.market.market_open
        assert [s.symbol for s in snap.symbols] == ["AAPL", "TSLA"]
    hub.flush(0)
    # one flush, four events: a pause and its collar, the end of market hours, trading again
    books.apply_batch([im.TradingAction(2, 0, 5, "TSLA", "P", " ", "LUDP"),
                       im.LuldAuctionCollar(2, 0, 5, "TSLA", 2_000_000, 2_100_000, 1_900_000, 0),
                       im.TradingAction(3, 0, 5, "MSFT", "H", " ", "T1"),  # nobody here watches MSFT
                       im.SystemEvent(0, 0, 6, "M"),
                       im.TradingAction(2, 0, 7, "TSLA", "T", " ", "")])
    got = {}
    sent = flush_all(hub)
    for sub in (binary, text):
        frames = [m.status for m in sent[sub.id]]
        got[sub.id] = frames
        # the pause and the collar; then the market (a batch holds one market state) and the resumption
        assert [(f.HasField("market"), [(s.symbol, s.trading_state, s.luld_upper_price) for s in f.symbols])
                for f in frames] == [(False, [("TSLA", "P", 0), ("TSLA", "P", 2_100_000)]),
                                     (True, [("TSLA", "T", 0)])]
        assert frames[1].market.system_event == "M" and not frames[1].market.market_open
        versions = [s.version for f in frames for s in f.symbols]
        assert versions == [versions[0], versions[0] + 1, versions[0] + 2]  # every event: consecutive versions
        assert not any(f.snapshot for f in frames)
    assert got[1] == got[2]  # JSON carries exactly what protobuf does
    assert flush(hub, binary) == []  # nothing new: nothing sent


def test_a_stuck_subscriber_gets_the_state_again_not_a_backlog() -> None:
    books = make_books()
    hub = Hub(books)
    sub = Subscriber(1)
    hub.subscribe(sub, "status", [1])
    hub.flush(0)
    sub.writable = False
    books.apply_batch([im.TradingAction(1, 0, 5, "AAPL", "H", " ", "T1"), im.RegSho(1, 0, 6, "AAPL", "1")])
    assert flush(hub, sub) == []
    assert hub.status.stats.resyncs == 0
    sub.writable = True
    (frame,) = [m.status for m in flush(hub, sub)]
    assert frame.snapshot and frame.HasField("market")
    assert [(s.trading_state, s.reason, s.reg_sho) for s in frame.symbols] == [("H", "T1", "1")]
    assert hub.status.stats.resyncs == 1
    hub.remove(sub)
    assert not hub.status.members and not hub.status.subs


def test_the_quote_carries_the_trading_state() -> None:
    books = make_books()
    hub = Hub(books)
    sub = Subscriber(1)
    hub.subscribe(sub, "quotes", [2])
    hub.flush(0)
    books.apply(im.TradingAction(2, 0, 5, "TSLA", "P", " ", "LUDP"))
    (msg,) = flush(hub, sub)
    q = msg.quotes.quotes[0]
    assert (q.halted, q.trading_state, q.trading_reason) == (True, "P", "LUDP")
