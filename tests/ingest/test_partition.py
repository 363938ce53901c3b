"""Partitions: hot symbols alone, the rest by a stable hash; each process applies only its own symbols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ingest.moldudp64 import PacketBuilder
from ingest.partition import PartitionFilter, PartitionMap
from ingest.session import FeedSession
from normalize import Books
from venue.simulator import ExchangeSimulator, fixed_universe


def test_hot_symbols_get_their_own_partitions() -> None:
    pmap = PartitionMap(4, ["tsla", "NVDA"])
    assert pmap.partition_of("TSLA") == 0 and pmap.partition_of("NVDA") == 1
    others = {pmap.partition_of(s) for s in fixed_universe(2000)[2:]}
    assert others == {2, 3}  # everything else shares what is left
    assert PartitionMap(4, ["TSLA", "NVDA"]).partition_of("MSFT") == pmap.partition_of("MSFT")  # stable


@pytest.mark.parametrize("n,hot", [(0, []), (2, ["A", "B"]), (3, ["A", "A"])])
def test_bad_maps_are_refused(n: int, hot: list[str]) -> None:
    with pytest.raises(ValueError):
        PartitionMap(n, hot)


def test_map_from_file(tmp_path: Path) -> None:
    path = tmp_path / "partitions.json"
    path.write_text(json.dumps({"partitions": 3, "hot": ["TSLA"]}))
    pmap = PartitionMap.from_file(path)
    assert pmap.partitions == 3 and pmap.partition_of("TSLA") == 0
    assert PartitionMap.default(4).hot == {"TSLA": 0, "NVDA": 1}


def test_partitions_together_build_exactly_the_full_books() -> None:
    sim = ExchangeSimulator(60, seed=11)
    raw = sim.generate_encoded(40_000)
    builder = PacketBuilder("P")
    packets = [p for m in raw if (p := builder.add(m)) is not None]
    packets.append(builder.flush() or b"")

    def build(partition: PartitionFilter | None) -> tuple[Books, FeedSession]:
        books, session = Books(), FeedSession(partition=partition)
        for p in packets:
            books.apply_batch(session.on_packet(p))
        return books, session

    full, _ = build(None)
    pmap = PartitionMap(4, ["TSLA", "NVDA"])
    names = sim.tickers
    for k in range(4):
        books, session = build(PartitionFilter(pmap, k))
        mine = np.array([False] + [pmap.partition_of(s) == k for s in names] + [False] * (65_536 - len(names) - 1),
                        dtype=bool)
        assert session.counters["other_partition"] > 0 and session.counters["gaps"] == 0
        assert set(books.locate_of) == {s for s in names if pmap.partition_of(s) == k}
        for field in ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "volume", "seq"):
            ours, ref = getattr(books, field), getattr(full, field)
            np.testing.assert_array_equal(ours[mine], ref[mine], err_msg=f"partition {k} {field}")
            assert not ours[~mine].any(), f"partition {k} applied another partition's {field}"


def test_a_snapshot_rebuild_keeps_only_the_partitions_symbols() -> None:
    from ingest import itch

    sim = ExchangeSimulator(40, seed=12)
    sim.generate_encoded(5_000)
    snapshot = [itch.decode(m) for m in sim.snapshot()]
    pmap = PartitionMap(3, ["TSLA"])
    kept = PartitionFilter(pmap, 0).keep(snapshot)
    books = Books()
    books.rebuild(kept)
    assert set(books.locate_of) == {"TSLA"}
    # TSLA's messages, and the market's (the system event, locate 0), which every partition applies
    assert {m.locate for m in kept} == {0, 1} and len(kept) < len(snapshot)


def test_every_partition_applies_the_markets_messages_and_its_own_symbols_status() -> None:
    from normalize.row import FIELD_NAMES
    from venue.status import StatusConfig

    now = [34_200 * 1_000_000_000]
    sim = ExchangeSimulator(60, seed=13, clock=lambda: now[0],
                            status=StatusConfig(luld_every=1.0, luld_pause=0.5, events_every=0.2, breach=True))
    raw: list[bytes] = []
    for _ in range(30):
        raw += sim.generate_encoded(500)
        now[0] += 250_000_000
    assert {m[0] for m in raw} >= set(b"SHYJKVWh")
    builder = PacketBuilder("P")
    packets = [p for m in raw if (p := builder.add(m)) is not None]
    packets.append(builder.flush() or b"")
    full, session = Books(), FeedSession()
    for p in packets:
        full.apply_batch(session.on_packet(p))
    pmap = PartitionMap(3, ["TSLA"])
    for k in range(3):
        books, session = Books(), FeedSession(partition=PartitionFilter(pmap, k))
        for p in packets:
            books.apply_batch(session.on_packet(p))
        assert books.market.tolist() == full.market.tolist()  # S, V, W (locate 0) reach every partition
        mine = np.array([name is not None for name in books.symbol_of])
        for field in FIELD_NAMES:
            np.testing.assert_array_equal(getattr(books, field)[mine], getattr(full, field)[mine],
                                          err_msg=f"partition {k} {field}")


def test_undecoded_blocks_are_filtered_as_decoded_messages_are() -> None:
    """``keep_offsets`` (the batched path's filter, before the field decode) keeps exactly the messages
    ``decode_blocks`` keeps, learning the directory in order, a locate given to another symbol mid-stream too."""
    from ingest import itch
    from ingest.batch import PAD, frame
    from ingest.messages import StockDirectory
    from ingest.packets import decode_blocks
    from vocab.framing import frame_all

    sim = ExchangeSimulator(40, seed=12)
    raw = sim.generate_encoded(8_000)
    moved = next(m for m in map(itch.decode, raw) if isinstance(m, StockDirectory))
    assert isinstance(moved, StockDirectory)
    # the same locate named again, as another ticker, halfway: its later messages follow the new name's partition
    renamed = itch.encode(moved._replace(stock="TSLA" if moved.stock != "TSLA" else "NVDA"))
    data = frame_all([*raw[:4_000], renamed, *raw[4_000:]])
    pmap = PartitionMap(3, ["TSLA"])
    for k in range(3):
        want_counters = {"messages": 0, "other_partition": 0, "unknown_message_types": 0, "truncated_messages": 0}
        want = decode_blocks(data, want_counters, PartitionFilter(pmap, k))
        buf = np.zeros(len(data) + PAD, np.uint8)
        buf[: len(data)] = np.frombuffer(data, np.uint8)
        offsets, _ = frame(buf, len(data))
        kept, other = PartitionFilter(pmap, k).keep_offsets(buf, offsets)
        got = [itch.decode(buf.data, int(off), itch.LENGTHS[int(buf[off])]) for off in kept]
        assert got == want and other == want_counters["other_partition"]
        assert 0 < len(got) < len(raw)
