"""The batched path is the default engine (``--plain`` still gives the message-at-a-time one, ``--batched`` is
accepted as a no-op), and a recorded feed sent over UDP builds the same books on both, and on partitioned
shared-memory workers of the default path."""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path

from ingest.capture import CaptureWriter, iter_messages
from ingest.moldudp64 import PacketBuilder
from ingest.partition import PartitionMap
from normalize import Books
from normalize.kernel import KernelBooks
from normalize.replicas.shm import BookView, SharedBookState
from tests.conftest import eventually, free_port
from tests.ingest.reference import RecordingSimulator, assert_same_books
from tests.normalize.test_replica_shm import assert_view_equals
from tickfan.node import NodeConfig, add_arguments, node_config
from tickfan.roles import IngestRole
from venue.rewinder import Rewinder

SESSION = "ENGINES001"


def parsed(*argv: str) -> NodeConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return node_config(parser.parse_args(["--session", SESSION, *argv]))


def test_the_default_is_the_kernel_and_plain_is_a_flag_away() -> None:
    assert NodeConfig().batched and parsed().batched
    assert parsed("--batched").batched  # old scripts: accepted, no effect
    assert not parsed("--plain").batched and not parsed("--no-batched").batched
    assert isinstance(IngestRole(NodeConfig()).books, KernelBooks)
    assert type(IngestRole(NodeConfig(batched=False)).books) is Books
    assert not parsed("--plain", "--batched").batched  # an old config's batched = true does not override it


def test_a_partitioned_worker_filters_in_its_kernel() -> None:
    state = SharedBookState.create()
    try:
        role = IngestRole(NodeConfig(publish=state.name, partition=(PartitionMap(2), 1)))
        assert isinstance(role.books, KernelBooks) and role.books.partition is role.partition
        assert role.partition is not None and role.partition.partition == 1
        plain = IngestRole(NodeConfig(publish=state.name, partition=(PartitionMap(2), 0), batched=False))
        assert type(plain.books) is Books and plain.partition is not None  # the feed session filters
        whole = IngestRole(NodeConfig(publish=state.name, partition=(PartitionMap(1), 0)))
        assert whole.partition is None  # one partition has every symbol: no filter at all
    finally:
        state.close()


def test_a_recorded_feed_builds_the_same_books_on_every_engine(tmp_path: Path) -> None:
    sim = RecordingSimulator(60, seed=31)
    capture = tmp_path / "day.itch"
    with capture.open("wb") as out:
        writer = CaptureWriter(out)
        for m in sim.generate_encoded(12_000):
            writer.write(m)
    with capture.open("rb") as f:
        recorded = list(iter_messages(f))
    builder = PacketBuilder(SESSION)
    rewinder = Rewinder(SESSION, len(recorded) + 1)
    packets = []
    for m in recorded:
        rewinder.append(m)
        if (p := builder.add(m)) is not None:
            packets.append(p)
    if (tail := builder.flush()) is not None:
        packets.append(tail)
    want = sim.books()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rw_port = free_port(socket.SOCK_DGRAM)
        rw_transport, _ = await loop.create_datagram_endpoint(lambda: rewinder, local_addr=("127.0.0.1", rw_port))
        state = SharedBookState.create()
        roles: list[IngestRole] = []
        try:
            def role(**kw: object) -> IngestRole:
                port = free_port(socket.SOCK_DGRAM)
                r = IngestRole(NodeConfig(feeds=[("127.0.0.1", port)], session=SESSION,
                                          rewinder=("127.0.0.1", rw_port), **kw))  # type: ignore[arg-type]
                roles.append(r)
                return r

            default, plain = role(), role(batched=False)
            pmap = PartitionMap(3, ["TSLA"])
            workers = [role(publish=state.name, partition=(pmap, k)) for k in range(3)]
            for r in roles:
                await r.start()
            ports = [r.config.feeds[0][1] for r in roles]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as line:
                for i, p in enumerate(packets):
                    for port in ports:
                        line.sendto(p, ("127.0.0.1", port))
                    if i % 8 == 7:
                        await asyncio.sleep(0.002)  # loopback: a lost datagram is recovered, but spare the buffer

            def done() -> bool:
                return all(r.feed is not None and r.feed.session.next_seq == len(recorded) + 1
                           and r.feed.queued_bytes == 0 for r in roles)

            await eventually(done, what="every engine applied the whole feed",
                             state=lambda: [r.feed.session.next_seq if r.feed else None for r in roles])
            assert isinstance(default.books, KernelBooks) and type(plain.books) is Books
            for books in (default.books, plain.books):
                assert_same_books(books, want)
                assert books.counters == want.counters
            view = BookView(SharedBookState.attach(state.name))
            view.sync()
            assert_view_equals(view, plain.books)
            assert all(isinstance(w.books, KernelBooks) and w.books.partition is not None for w in workers)
            assert all(not r.feed.session.needs_rebuild for r in roles if r.feed is not None)
        finally:
            for r in roles:
                await r.close()
            state.close()
            rw_transport.close()

    asyncio.run(main())
