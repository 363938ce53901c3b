"""Snapshots come from bytes already encoded for each symbol's current version (issue 10).

The attack: an anonymous client alternating subscribe/unsubscribe of many symbols on quotes+depth made the node
encode every symbol again on every subscribe (30 ms of CPU per cycle for 1,000 symbols in binary, 94 ms in
JSON). Now a symbol is encoded once per version, whoever subscribes and however often.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fanout.hub import Hub, Subscriber
from fanout.protocol import ClientProtocol, Reply
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, decode, make_books


def count_builds(hub: Hub) -> dict[str, int]:
    """Count the encodings of each state channel (its cache's ``build`` calls, and the symbols of its compiled
    ``batch`` calls)."""
    counts = {"quotes": 0, "depth": 0}
    for name, state in hub.state_channels.items():
        build = state.cache.build

        def counted(loc: int, build: Callable[[int], Any] = build, name: str = name) -> Any:
            counts[name] += 1
            return build(loc)

        state.cache.build = counted
        batch = state.cache.batch
        if batch is not None:
            def counted_batch(locs: Any, batch: Any = batch, name: str = name) -> Any:
                counts[name] += len(locs)
                return batch(locs)

            state.cache.batch = counted_batch
    return counts


@pytest.mark.parametrize("json_mode", [False, True])
def test_resubscribing_serves_the_cached_bytes_and_encodes_only_what_moved(json_mode: bool) -> None:
    books = make_books()
    hub = Hub(books, 16)
    builds = count_builds(hub)
    a, b = Subscriber(1, json=json_mode), Subscriber(2, json=json_mode)
    first = {}
    for channel in ("quotes", "depth"):
        hub.subscribe(a, channel, [1, 2, 3])
        first[channel] = hub.snapshot(a, [1, 2, 3], channel)
    assert builds == {"quotes": 3, "depth": 3}
    for _ in range(5):  # the churn: another client and the same one, again and again
        for sub in (a, b):
            for channel in ("quotes", "depth"):
                hub.unsubscribe(sub, channel, [1, 2, 3])
                hub.subscribe(sub, channel, [1, 2, 3])
                assert hub.snapshot(sub, [1, 2, 3], channel) == first[channel]
    assert builds == {"quotes": 3, "depth": 3}
    assert hub.stats.snapshot_symbols == 6 + 5 * 2 * 6 and hub.stats.snapshot_encoded == 6

    bump(books, 1, 1000500)  # AAPL moves (quotes and depth): only it is encoded again
    snap = decode(hub.snapshot(b, [1, 2, 3], "quotes"))
    depth = decode(hub.snapshot(b, [1, 2, 3], "depth"))
    assert builds == {"quotes": 4, "depth": 4}
    assert snap.snapshot.quotes[0].bid_price == 1000500 and snap.snapshot.quotes[0].seq == books.seq[1]
    assert depth.depth.books[0].bids[0].price == 1000500 and depth.depth.snapshot


def test_the_flush_and_snapshots_share_one_encoding_per_version() -> None:
    books = make_books()
    hub = Hub(books, 16)
    builds = count_builds(hub)
    a, b = Subscriber(1), Subscriber(2)
    hub.subscribe(a, "quotes", [1])
    hub.snapshot(a, [1])
    bump(books, 1, 1000500)
    (_, frames), = hub.flush(10**12)  # the flush encodes the new version for its subscribers...
    assert decode(frames[0]).quotes.quotes[0].bid_price == 1000500
    hub.subscribe(b, "quotes", [1])
    assert decode(hub.snapshot(b, [1])).snapshot.quotes[0].bid_price == 1000500  # ...and the snapshot reuses it
    assert builds["quotes"] == 2


def test_a_symbol_with_no_version_yet_is_still_encoded_once() -> None:
    books = make_books()
    books.seq[2] = 0  # a version the cache starts at: "never encoded" must not be mistaken for "current"
    hub = Hub(books, 16)
    a = Subscriber(1)
    hub.subscribe(a, "quotes", [2])
    assert decode(hub.snapshot(a, [2])).snapshot.quotes[0].symbol == "TSLA"


def test_subscribe_churn_through_the_protocol_encodes_each_symbol_once() -> None:
    """The issue's scenario, in process: the connection's protocol and the adapter's work on its replies."""
    books = make_books()
    hub = Hub(books, 16)
    builds = count_builds(hub)
    sub = Subscriber(1)
    protocol = ClientProtocol(books.locate_of.get)
    protocol.open()
    names, channels = ["AAPL", "TSLA", "MSFT"], ["quotes", "depth"]
    message = {
        "subscribe": pb.ClientMessage(subscribe=pb.Subscribe(symbols=names, channels=channels)).SerializeToString(),
        "unsubscribe": pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=names, channels=channels)
                                        ).SerializeToString()}

    def apply(reply: Reply) -> None:
        for channel, locates in reply.unsubscribed.items():
            hub.unsubscribe(sub, channel, locates)
        for channel, locates in reply.subscribed.items():
            hub.subscribe(sub, channel, locates)
            hub.snapshot(sub, locates, channel)

    for i in range(20):
        apply(protocol.receive(message["subscribe"], now=float(i)))
        apply(protocol.receive(message["unsubscribe"], now=i + 0.5))
    assert builds == {"quotes": 3, "depth": 3}
