"""The shared-memory replica: partition writers (``ShmPublisher``), one reader (``BookView``), the same books as one
process."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pytest

from ingest import itch
from ingest.messages import AddOrder, Message, Trade
from ingest.moldudp64 import PacketBuilder
from ingest.partition import PartitionFilter, PartitionMap
from ingest.session import FeedSession
from normalize import Books
from normalize.bar_feed import BarFeed
from normalize.bar_types import INTERVALS, MINUTE
from normalize.replicas.shm import PRINT_RING, BookView, SharedBookState, ShmPublisher
from normalize.row import FIELD_NAMES
from tests.conftest import directory
from venue.simulator import ExchangeSimulator

from .bar_reference import reference_bars, session


def packets(symbols: int, n: int, seed: int) -> list[bytes]:
    sim = ExchangeSimulator(symbols, seed=seed)
    builder = PacketBuilder("SHM")
    out = [p for m in sim.generate_encoded(n) if (p := builder.add(m)) is not None]
    tail = builder.flush()
    return out + ([tail] if tail else [])


def feed(books: Books | ShmPublisher, session: FeedSession, stream: list[bytes]) -> None:
    for p in stream:
        books.apply_batch(session.on_packet(p))


def assert_view_equals(view: BookView, full: Books) -> None:
    for name in FIELD_NAMES:
        np.testing.assert_array_equal(getattr(view, name), getattr(full, name), err_msg=name)
    assert view.locate_of == full.locate_of
    for loc in full.locate_of.values():
        for side in (0, 1):
            assert view.levels(loc, side, 10) == full.levels(loc, side, 10)


def test_partition_writers_and_a_reader_see_the_single_process_books() -> None:
    stream = packets(80, 30_000, seed=21)
    full = Books()
    feed(full, FeedSession(), stream)
    state = SharedBookState.create()
    try:
        pmap = PartitionMap(3, ["TSLA"])
        for k in range(3):
            feed(ShmPublisher(state, k), FeedSession(partition=PartitionFilter(pmap, k)), stream)
        view = BookView(SharedBookState.attach(state.name))
        assert view.sync() > 0
        assert_view_equals(view, full)
        assert view.sync() == 0  # nothing moved since
        assert int(state.arrays["generation"][:3].sum()) % 2 == 0  # every writer finished its packets
    finally:
        state.close()


def _writer(name: str, k: int, stream: list[bytes]) -> None:
    state = SharedBookState.attach(name)
    pmap = PartitionMap(2, ["TSLA"])
    feed(ShmPublisher(state, k), FeedSession(partition=PartitionFilter(pmap, k)), stream)
    state.close()


def test_a_reader_syncing_while_writers_in_other_processes_write() -> None:
    stream = packets(60, 40_000, seed=22)
    full = Books()
    feed(full, FeedSession(), stream)
    state = SharedBookState.create()
    try:
        ctx = mp.get_context("fork")
        writers = [ctx.Process(target=_writer, args=(state.name, k, stream)) for k in range(2)]
        for w in writers:
            w.start()
        view = BookView(SharedBookState.attach(state.name))
        seqs = view.seq.copy()
        while any(w.is_alive() for w in writers):
            view.sync()
            assert (view.seq >= seqs).all(), "a version went backwards"
            seqs = view.seq.copy()
            ok = (view.bid_price > 0) & (view.ask_price > 0)
            assert (view.bid_price[ok] < view.ask_price[ok]).all(), "a torn or crossed quote was handed on"
        for w in writers:
            w.join()
            assert w.exitcode == 0
        view.sync()
        assert_view_equals(view, full)
    finally:
        state.close()


def test_a_new_block_holds_no_names_and_no_owners() -> None:
    state = SharedBookState.create(n=16)
    try:
        # not b"0" (what numpy stores for ``names[...] = 0``): a reader would take it for a ticker
        assert state.arrays["names"].tolist() == [b""] * 16
        assert state.arrays["owner"].tolist() == [-1] * 16
    finally:
        state.close()


def test_a_sync_in_the_middle_of_a_new_locates_first_packet_takes_nothing_of_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader syncs after the writer applied a packet (directory entry and quote) but before it published
    the name: the row is left for the next sync, which takes it whole, name and all."""
    state = SharedBookState.create(n=16)
    try:
        pub = ShmPublisher(state, 1)
        view = BookView(SharedBookState.attach(state.name, n=16))
        apply_books = pub.books.apply_batch
        copied_mid_packet: list[int] = []

        def apply_then_sync(msgs: Sequence[Message]) -> None:
            apply_books(msgs)
            copied_mid_packet.append(view.sync())

        monkeypatch.setattr(pub.books, "apply_batch", apply_then_sync)
        pub.apply_batch([directory(5, "AAPL"), AddOrder(5, 0, 2, 1, "B", 100, "AAPL", 1_000_000)])
        assert copied_mid_packet == [0] and view.counters["rows_deferred"] == 1
        assert view.symbol_of[5] is None and view.seq[5] == 0 and view.bid_price[5] == 0
        assert view.sync() == 1
        assert view.locate_of == {"AAPL": 5} and view.bid_price[5] == 1_000_000 and view.seq[5] == pub.books.seq[5]
    finally:
        state.close()


class _WritesDuringTheCopy:
    """A shared row array that lets a writer apply a packet while the reader is copying it."""

    def __init__(self, shared: np.ndarray[Any, Any], write: Any) -> None:
        self.shared, self.write = shared, write

    def __getitem__(self, rows: Any) -> Any:
        if self.write is not None:
            self.write, write = None, self.write
            write()
        return self.shared[rows]


def test_a_locate_claimed_by_another_writer_during_the_copy_is_copied_again() -> None:
    """Writer 1 published locate 5; writer 2 claims and writes it while the reader copies the row (the fields
    before ``seq`` old, ``seq`` new): the reader must check writer 2, the owner after the copy, not writer 1."""
    state = SharedBookState.create(n=16)
    try:
        first, second = ShmPublisher(state, 1), ShmPublisher(state, 2)
        first.apply_batch([directory(5, "AAPL"), AddOrder(5, 0, 2, 1, "B", 100, "AAPL", 1_000_000)])
        view = BookView(SharedBookState.attach(state.name, n=16))
        view.sync()
        first.apply(AddOrder(5, 0, 3, 2, "B", 100, "AAPL", 1_000_100))  # moves the row: the next sync copies it
        i = FIELD_NAMES.index("seq")
        local, shared = view._fields[i]
        view._fields[i] = (local, cast(Any, _WritesDuringTheCopy(shared, lambda: second.apply_batch(
            [directory(5, "AAPL"), AddOrder(5, 0, 4, 3, "B", 100, "AAPL", 1_000_200)]))))
        view.sync()
        assert view.counters["sync_retries"] == 1
        for name in FIELD_NAMES:
            np.testing.assert_array_equal(getattr(view, name), state.arrays[name], err_msg=name)
    finally:
        state.close()


def test_recovery_hooks_publish_under_the_writers_generation() -> None:
    state = SharedBookState.create()
    try:
        pub = ShmPublisher(state, 2)
        gen = state.arrays["generation"]
        pub.apply_batch([directory(5, "AAPL"), AddOrder(5, 0, 2, 1, "B", 100, "AAPL", 1_000_000),
                         AddOrder(5, 0, 3, 2, "S", 100, "AAPL", 1_010_000)])
        assert gen[2] == 2 and int(state.arrays["owner"][5]) == 2
        view = BookView(SharedBookState.attach(state.name))
        view.sync()
        assert view.locate_of == {"AAPL": 5}
        assert view.levels(5, 0, 10) == [(1_000_000, 100)] and view.levels(5, 1, 10) == [(1_010_000, 100)]
        pub.set_stale_all(True)
        view.sync()
        assert view.stale[5] and gen[2] == 4
        pub.rebuild([directory(5, "AAPL"), AddOrder(5, 0, 4, 7, "B", 300, "AAPL", 999_900)])
        assert gen[2] == 6
        view.sync()
        assert not view.stale[5]
        assert view.levels(5, 0, 10) == [(999_900, 300)] and view.levels(5, 1, 10) == []
        pub.apply(AddOrder(5, 0, 5, 8, "S", 10, "AAPL", 1_020_000))
        assert gen[2] == 8
        view.sync()
        assert view.levels(5, 1, 10) == [(1_020_000, 10)]
        assert pub.books.bid_price is not view.bid_price and np.shares_memory(pub.books.bid_price,
                                                                             state.arrays["bid_price"])
    finally:
        state.close()


def test_a_writer_number_outside_the_block_is_refused() -> None:
    state = SharedBookState.create(n=16)
    try:
        with pytest.raises(ValueError):
            ShmPublisher(state, 64)
    finally:
        state.close()


def test_prints_cross_shared_memory_and_the_reader_builds_the_reference_bars() -> None:
    """Partition writers copy their prints and breaks into the block; a reader syncing between packets gathers
    them (trades channel) and builds the same bars as one process would (bars cross processes)."""

    stream = session()
    flat = [m for p in stream for m in p]
    state = SharedBookState.create()
    try:
        pmap = PartitionMap(3, [])
        writers = [(ShmPublisher(state, k), FeedSession(partition=PartitionFilter(pmap, k))) for k in range(3)]
        view = BookView(SharedBookState.attach(state.name))
        bars = BarFeed(view)
        builder = PacketBuilder("SHM")
        for packet in stream:
            raw = [p for m in packet if (p := builder.add(itch.encode(m))) is not None]
            raw += [tail] if (tail := builder.flush()) else []
            for publisher, sess in writers:
                feed(publisher, sess, raw)
            view.sync()
            bars.tick()
        bars.close_until(flat[-1].timestamp + 2 * MINUTE)
        assert view.counters["prints_lost"] == view.counters["breaks_lost"] == 0
        got = {(loc, w, b.start_ns): (b.open, b.high, b.low, b.close, b.volume, b.trades, b.notional)
               for loc in range(1, 13) for w in INTERVALS for b in bars.history(loc, w, 10_000) if b.trades}
        assert got == reference_bars(flat)
        assert bars.counters["breaks"] >= 5
        single = Books()
        single.apply_batch(flat)
        assert view.trades_total == single.trades_total  # every print crossed, once
    finally:
        state.close()


def test_a_reader_that_falls_behind_a_writer_ring_counts_what_it_lost() -> None:

    state = SharedBookState.create()
    try:
        publisher = ShmPublisher(state, 0)
        view = BookView(SharedBookState.attach(state.name))
        publisher.apply_batch([directory(1, "AAPL")])
        n = PRINT_RING + 100
        publisher.apply_batch([Trade(1, 0, 10 + i, 0, "B", 100, "AAPL", 1_000_000, i + 1) for i in range(n)])
        view.sync()
        assert view.counters["prints_lost"] == 100
        prints, _, _ = view.trades_since(0)
        assert prints.match_number.tolist() == list(range(101, n + 1))  # the newest ring's worth, in order
    finally:
        state.close()


def test_a_restarted_writer_changes_the_readers_feed_epoch() -> None:
    """Resume tokens name the feed epoch: a reader's changes when a writer's books (trade_seq numbering) do."""
    state = SharedBookState.create()
    try:
        ShmPublisher(state, 0)
        view = BookView(SharedBookState.attach(state.name))
        first = view.session_epoch
        assert first == view.session_epoch and first > 0
        ShmPublisher(state, 0)  # the worker restarted: new books, trade_seq from 1 again
        assert view.session_epoch != first
    finally:
        state.close()


def _blocks(stream: list[bytes]) -> list[bytes]:
    """The length-prefixed messages of each MoldUDP64 packet (what the batched path hands the kernel)."""
    return [p[20:] for p in stream]


def test_a_batched_writer_publishes_what_the_plain_engine_does() -> None:
    stream = packets(80, 30_000, seed=23)
    full = Books()
    feed(full, FeedSession(), stream)
    state = SharedBookState.create()
    try:
        pub = ShmPublisher(state, 0, batched=True)
        view = BookView(SharedBookState.attach(state.name))  # gathers prints from now on
        for block in _blocks(stream):
            pub.apply_bytes(block)
        assert view.sync() > 0
        assert_view_equals(view, full)
        locates = list(full.locate_of.values())
        assert state.arrays["owner"][locates].tolist() == [0] * len(locates)  # every row claimed
        assert int(state.arrays["generation"][0]) % 2 == 0
        # the prints crossed too (one sync at the end: what the ring no longer held is counted lost)
        assert view.trades_total + view.counters["prints_lost"] == full.trades_total
    finally:
        state.close()


def test_partitioned_batched_writers_publish_what_one_process_does() -> None:
    """Each worker takes every block undecoded and its kernel applies only its partition's messages, learnt from
    the directory as the blocks come: the reader sees the books one process builds (the plain engine's)."""
    stream = packets(80, 30_000, seed=25)
    full = Books()
    feed(full, FeedSession(), stream)
    state = SharedBookState.create()
    try:
        pmap = PartitionMap(3, ["TSLA"])
        view = BookView(SharedBookState.attach(state.name))
        pubs = [ShmPublisher(state, k, batched=True, partition=PartitionFilter(pmap, k)) for k in range(3)]
        for block in _blocks(stream):
            for pub in pubs:
                pub.apply_bytes(block)
        assert view.sync() > 0
        assert_view_equals(view, full)
        owners = state.arrays["owner"]
        assert {sym: int(owners[loc]) for sym, loc in full.locate_of.items()} == {
            sym: pmap.partition_of(sym) for sym in full.locate_of}
        kernels = [pub.books for pub in pubs]
        applied = sum(k.counters["messages"] for k in kernels)
        other = sum(cast(Any, k).frame_counters["other_partition"] for k in kernels)
        assert applied + other == 3 * full.counters["messages"]  # each message applied by one, refused by two
        assert view.trades_total + view.counters["prints_lost"] == full.trades_total
    finally:
        state.close()


def test_a_plain_publisher_refuses_undecoded_blocks() -> None:
    state = SharedBookState.create(n=16)
    try:
        with pytest.raises(RuntimeError, match="batched"):
            ShmPublisher(state, 0).apply_bytes(b"")
    finally:
        state.close()


def _batched_writer(name: str, stream: list[bytes]) -> None:
    state = SharedBookState.attach(name)
    pub = ShmPublisher(state, 0, batched=True)
    for block in _blocks(stream):
        pub.apply_bytes(block)
    state.close()


def test_a_reader_syncing_while_a_batched_writer_in_another_process_writes() -> None:
    stream = packets(60, 40_000, seed=24)
    full = Books()
    feed(full, FeedSession(), stream)
    state = SharedBookState.create()
    try:
        writer = mp.get_context("fork").Process(target=_batched_writer, args=(state.name, stream))
        writer.start()
        view = BookView(SharedBookState.attach(state.name))
        seqs = view.seq.copy()
        while writer.is_alive():
            view.sync()
            assert (view.seq >= seqs).all(), "a version went backwards"
            seqs = view.seq.copy()
            ok = (view.bid_price > 0) & (view.ask_price > 0)
            assert (view.bid_price[ok] < view.ask_price[ok]).all(), "a torn or crossed quote was handed on"
        writer.join()
        assert writer.exitcode == 0
        view.sync()
        assert_view_equals(view, full)
    finally:
        state.close()


def test_an_idle_reader_skips_the_scan_until_a_writer_moves() -> None:
    stream = packets(40, 4_000, seed=25)
    state = SharedBookState.create()
    try:
        pub = ShmPublisher(state, 0)
        view = BookView(SharedBookState.attach(state.name))
        session = FeedSession()
        feed(pub, session, stream[: len(stream) // 2])
        assert view.sync() > 0
        # nothing written since: the block is not scanned, so a row changed behind the writers' back (which no
        # writer does) stays unseen; this is what "skipped" means
        loc = next(iter(pub.books.locate_of.values()))
        state.arrays["seq"][loc] += 100
        assert view.sync() == 0
        state.arrays["seq"][loc] -= 100
        # a writer mid-packet: the sync that sees it odd does not count as whole, so the next one looks again
        gen = state.arrays["generation"]
        gen[0] += 1
        state.arrays["seq"][loc] += 1
        assert view.sync() == 0  # its row is deferred, not taken torn
        gen[0] += 1
        assert view.sync() == 1
        feed(pub, session, stream[len(stream) // 2:])  # the writer moves on: the next sync scans again
        assert view.sync() > 0
    finally:
        state.close()
