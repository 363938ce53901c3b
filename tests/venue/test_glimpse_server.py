"""The snapshot server: one connection, the simulator's whole state and where the feed stands."""

from __future__ import annotations

import asyncio

from ingest import glimpse
from normalize import Books
from tests.ingest.reference import RecordingSimulator
from venue.glimpse_server import start_snapshot_server


def test_a_snapshot_rebuilds_the_books_of_the_stream_so_far() -> None:
    async def scenario() -> None:
        sim = RecordingSimulator(40, seed=3)
        sim.generate_encoded(5_000)
        server = await start_snapshot_server(sim, lambda: len(sim.log) + 1, "127.0.0.1", 0)
        try:
            reader = glimpse.SnapshotReader()
            r, w = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            while not reader.done:
                data = await asyncio.wait_for(r.read(1 << 16), 10)
                assert data, "the stream ended before End of Snapshot"
                reader.feed(data)
            w.close()
        finally:
            server.close()
        assert reader.next_seq == 5_001
        books = Books()
        books.rebuild(reader.messages)
        want = sim.books()
        for name in ("bid_price", "bid_size", "ask_price", "ask_size", "halted"):
            assert (getattr(books, name) == getattr(want, name)).all(), name
        assert books.live_orders() == want.live_orders()

    asyncio.run(scenario())
