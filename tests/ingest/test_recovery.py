"""Loss on purpose: books built through a lossy relay and the rewinder equal the books of a lossless line."""

from __future__ import annotations

import asyncio
import socket

import numpy as np

from ingest.handler import FeedHandler, open_feeds
from ingest.session import State
from normalize import Books
from venue.simulator import serve

from .lossy_relay import start_relay

FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "halted")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_same_books(a: Books, b: Books) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.orders == b.orders


async def settle(*handlers: FeedHandler, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if all(h.session.ended and h.session.state is not State.RECOVERING for h in handlers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"feeds did not settle in {timeout} s: "
                         f"{[(h.session.state, h.session.ended, h.session.counters) for h in handlers]}")


def port_of(h: FeedHandler) -> int:
    return int(h.lines[0].get_extra_info("sockname")[1])


def test_drops_duplicates_and_reordering_are_recovered_exactly() -> None:
    async def scenario() -> None:
        reference, lossy = Books(), Books()
        ref_h = await open_feeds([("127.0.0.1", 0)], reference.apply_batch)
        rewinder = ("127.0.0.1", free_udp_port())
        lossy_h = await open_feeds([("127.0.0.1", 0)], lossy.apply_batch, rewinder=rewinder)
        relay_t, relay, relay_port = await start_relay(("127.0.0.1", port_of(lossy_h)), drop=0.03,
                                                       duplicate=0.03, reorder=0.05)
        try:
            await serve([("127.0.0.1", port_of(ref_h)), ("127.0.0.1", relay_port)], rate=20_000, symbols=200,
                        seed=4, duration=1.5, rewinder=rewinder)
            await settle(ref_h, lossy_h)
        finally:
            relay_t.close()
            ref_h.close()
            lossy_h.close()
        c = lossy_h.session.counters
        assert relay.counts["dropped"] > 10 and relay.counts["duplicated"] > 10 and relay.counts["reordered"] > 10
        assert ref_h.session.counters["gaps"] == 0
        assert c["gaps"] > 0 and c["requests_sent"] > 0 and c["messages_recovered"] > 0
        assert c["messages_missed"] == 0 and c["recovery_failures"] == 0 and not lossy_h.session.needs_rebuild
        assert lossy_h.session.next_seq == ref_h.session.next_seq
        assert_same_books(reference, lossy)

    asyncio.run(scenario())


def test_losing_line_a_mid_stream_costs_nothing() -> None:
    async def scenario() -> None:
        reference, books = Books(), Books()
        ref_h = await open_feeds([("127.0.0.1", 0)], reference.apply_batch)
        a_port, b_port = free_udp_port(), free_udp_port()
        h = await open_feeds([("127.0.0.1", a_port), ("127.0.0.1", b_port)], books.apply_batch)
        relay_t, relay_a, relay_port = await start_relay(("127.0.0.1", a_port))
        try:
            asyncio.get_running_loop().call_later(0.6, setattr, relay_a, "dead", True)
            await serve([("127.0.0.1", port_of(ref_h)), ("127.0.0.1", relay_port), ("127.0.0.1", b_port)],
                        rate=20_000, symbols=200, seed=5, duration=1.2)
            await settle(ref_h, h)
        finally:
            relay_t.close()
            ref_h.close()
            h.close()
        assert relay_a.dead and relay_a.counts["in"] > 100
        c = h.session.counters
        assert c["gaps"] == 0 and c["messages_missed"] == 0 and c["duplicate_packets"] > 0
        assert_same_books(reference, books)

    asyncio.run(scenario())


def test_a_gap_past_the_rewinder_history_goes_stale_then_rebuilds_from_a_snapshot() -> None:
    async def scenario() -> None:
        reference, books = Books(), Books()
        ref_h = await open_feeds([("127.0.0.1", 0)], reference.apply_batch)
        rewinder = ("127.0.0.1", free_udp_port())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            snapshot = ("127.0.0.1", int(s.getsockname()[1]))
        h = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder,
                             on_stale=books.set_stale_all, recovery_timeout=0.3, snapshot=snapshot,
                             on_snapshot=books.rebuild)
        relay_t, relay, relay_port = await start_relay(("127.0.0.1", port_of(h)))
        stale_seen: list[bool] = []
        real_set_stale = books.set_stale_all

        def watch_stale(flag: bool) -> None:
            stale_seen.append(flag and bool(books.known.any()))
            real_set_stale(flag)

        h.on_stale = watch_stale

        def burst() -> None:
            relay.drop_next = 200  # ~8,000 messages: far more than the rewinder's 500 of history

        asyncio.get_running_loop().call_later(0.5, burst)
        try:
            await serve([("127.0.0.1", port_of(ref_h)), ("127.0.0.1", relay_port)], rate=20_000, symbols=100,
                        seed=6, duration=2.0, rewinder=rewinder, history=500, snapshot=snapshot)
            await settle(ref_h, h)
        finally:
            relay_t.close()
            ref_h.close()
            h.close()
        c = h.session.counters
        assert c["recovery_failures"] >= 1 and c["messages_missed"] > 500
        assert stale_seen[:1] == [True] and h.rebuilds >= 1
        assert not h.session.needs_rebuild and not books.stale.any()
        # the rebuilt books equal the lossless line's, order by order (prints inside the hole are gone)
        for name in ("bid_price", "bid_size", "ask_price", "ask_size", "halted"):
            np.testing.assert_array_equal(getattr(books, name), getattr(reference, name), err_msg=name)
        assert books.orders == reference.orders

    asyncio.run(scenario())


def test_the_batched_path_through_a_lossy_relay_builds_the_same_books() -> None:
    from normalize.kernel import KernelBooks, warm_up

    warm_up()  # compile (or load) the kernels first: a first-call compile would stall the whole loop

    async def scenario() -> None:
        reference, batched = Books(), KernelBooks()
        ref_h = await open_feeds([("127.0.0.1", 0)], reference.apply_batch)
        rewinder = ("127.0.0.1", free_udp_port())
        applied: list[int] = []

        def raw_sink(blocks: bytes) -> None:
            applied.append(batched.apply_bytes(blocks))

        h = await open_feeds([("127.0.0.1", 0)], batched.apply_batch, rewinder=rewinder, raw_sink=raw_sink)
        relay_t, relay, relay_port = await start_relay(("127.0.0.1", port_of(h)), drop=0.02, duplicate=0.02,
                                                       reorder=0.03)
        try:
            await serve([("127.0.0.1", port_of(ref_h)), ("127.0.0.1", relay_port)], rate=20_000, symbols=200,
                        seed=8, duration=1.5, rewinder=rewinder)
            await settle(ref_h, h)
        finally:
            relay_t.close()
            ref_h.close()
            h.close()
        c = h.session.counters
        assert sum(applied) > 0 and c["gaps"] > 0 and c["messages_missed"] == 0  # both paths were used
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(batched, name), getattr(reference, name), err_msg=name)
        assert batched.live_orders() == reference.live_orders()

    asyncio.run(scenario())
