"""Loss on purpose: books built through a lossy relay and the rewinder equal the books of the generated stream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from ingest.handler import FeedHandler, open_feeds
from ingest.session import State
from normalize import Books
from tests.conftest import eventually, free_port
from venue.feed import serve

from .lossy_relay import LossyRelay, start_relay
from .reference import RecordingSimulator, assert_same_books

UDP = socket.SOCK_DGRAM


def port_of(h: FeedHandler) -> int:
    return int(h.lines[0].get_extra_info("sockname")[1])


def settled(h: FeedHandler) -> bool:
    return h.session.ended and h.session.state is not State.RECOVERING and h.session.state is not State.REBUILDING


async def through_relay(h: FeedHandler, sim: RecordingSimulator, *, duration: float, relay: dict[str, float],
                        direct: list[tuple[str, int]] | None = None,
                        on_relay: Callable[[LossyRelay], None] | None = None,
                        done: Callable[[FeedHandler], bool] = settled, **serve_kw: Any) -> LossyRelay:
    """Send ``sim``'s stream for ``duration`` s to ``h`` through a lossy relay (plus any ``direct`` lines), and
    wait until ``h`` has taken in the whole session."""
    relay_t, lossy, relay_port = await start_relay(("127.0.0.1", port_of(h)), **relay)
    if on_relay is not None:
        on_relay(lossy)
    try:
        await serve([("127.0.0.1", relay_port), *(direct or [])], rate=20_000, simulator=sim, duration=duration,
                    **serve_kw)
        await eventually(lambda: done(h), what="the feed settles",
                         state=lambda: (h.session.state, h.session.ended, h.session.counters))
    finally:
        relay_t.close()
        h.close()
    return lossy


def test_drops_duplicates_and_reordering_are_recovered_exactly() -> None:
    async def scenario() -> None:
        sim, books = RecordingSimulator(200, seed=4), Books()
        rewinder = ("127.0.0.1", free_port(UDP))
        h = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder)
        relay = await through_relay(h, sim, duration=1.5, relay={"drop": 0.03, "duplicate": 0.03, "reorder": 0.05},
                                    rewinder=rewinder)
        c = h.session.counters
        assert relay.counts["dropped"] > 10 and relay.counts["duplicated"] > 10 and relay.counts["reordered"] > 10
        assert c["gaps"] > 0 and c["requests_sent"] > 0 and c["messages_recovered"] > 0
        assert c["messages_missed"] == 0 and c["recovery_failures"] == 0 and not h.session.needs_rebuild
        assert h.session.next_seq == len(sim.log) + 1
        assert_same_books(books, sim.books())

    asyncio.run(scenario())


def test_losing_line_a_mid_stream_costs_nothing() -> None:
    async def scenario() -> None:
        sim, books = RecordingSimulator(200, seed=5), Books()
        rewinder = ("127.0.0.1", free_port(UDP))
        b_port = free_port(UDP)
        h = await open_feeds([("127.0.0.1", 0), ("127.0.0.1", b_port)], books.apply_batch, rewinder=rewinder)

        def cut_later(relay: LossyRelay) -> None:
            asyncio.get_running_loop().call_later(0.6, setattr, relay, "dead", True)

        relay_a = await through_relay(h, sim, duration=1.2, relay={}, direct=[("127.0.0.1", b_port)],
                                      on_relay=cut_later, rewinder=rewinder)
        assert relay_a.dead and relay_a.counts["in"] > 100
        c = h.session.counters
        # line B carried the stream on: the rewinder (there for what loopback itself may drop) was hardly needed,
        # where without B every message after the cut would have had to be re-sent
        assert c["messages_missed"] == 0 and c["duplicate_packets"] > 0
        assert c["messages_recovered"] < len(sim.log) // 10, c
        assert_same_books(books, sim.books())

    asyncio.run(scenario())


def test_a_gap_past_the_rewinder_history_goes_stale_then_rebuilds_from_a_snapshot() -> None:
    async def scenario() -> None:
        sim, books = RecordingSimulator(100, seed=6), Books()
        rewinder, snapshot = ("127.0.0.1", free_port(UDP)), ("127.0.0.1", free_port())
        stale_seen: list[bool] = []

        def watch_stale(flag: bool) -> None:
            stale_seen.append(flag and bool(books.known.any()))
            books.set_stale_all(flag)

        h = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder, on_stale=watch_stale,
                             recovery_timeout=0.3, snapshot=snapshot, on_snapshot=books.rebuild)

        def burst_later(relay: LossyRelay) -> None:
            # ~8,000 messages: far more than the rewinder's 500 of history
            asyncio.get_running_loop().call_later(0.5, setattr, relay, "drop_next", 200)

        await through_relay(h, sim, duration=2.0, relay={}, on_relay=burst_later, rewinder=rewinder, history=500,
                            snapshot=snapshot, done=lambda h: settled(h) and not h.session.needs_rebuild)
        c = h.session.counters
        assert c["recovery_failures"] >= 1 and c["messages_missed"] > 500
        assert stale_seen[:1] == [True] and h.rebuilds >= 1
        assert not h.session.needs_rebuild and not books.stale.any()
        # the rebuilt books equal the generated stream's, order by order (prints inside the hole are gone)
        assert_same_books(books, sim.books(), ("bid_price", "bid_size", "ask_price", "ask_size", "halted"))

    asyncio.run(scenario())


def test_the_batched_path_through_a_lossy_relay_builds_the_same_books() -> None:
    from normalize.kernel import KernelBooks, warm_up

    warm_up()  # compile (or load) the kernels first: a first-call compile would stall the whole loop

    async def scenario() -> None:
        sim, batched = RecordingSimulator(200, seed=8), KernelBooks()
        rewinder = ("127.0.0.1", free_port(UDP))
        applied: list[int] = []

        def raw_sink(blocks: bytes) -> None:
            applied.append(batched.apply_bytes(blocks))

        h = await open_feeds([("127.0.0.1", 0)], batched.apply_batch, rewinder=rewinder, raw_sink=raw_sink)
        await through_relay(h, sim, duration=1.5, relay={"drop": 0.02, "duplicate": 0.02, "reorder": 0.03},
                            rewinder=rewinder)
        c = h.session.counters
        assert sum(applied) > 0 and c["gaps"] > 0 and c["messages_missed"] == 0  # both paths were used
        assert_same_books(batched, sim.books())

    asyncio.run(scenario())
