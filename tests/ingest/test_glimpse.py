"""The snapshot stream: length-prefixed ITCH ending with End of Snapshot, read in arbitrary chunks."""

from __future__ import annotations

import pytest

from ingest import glimpse, itch
from ingest.itch import ItchError
from ingest.messages import AddOrder, StockDirectory


def test_reader_reassembles_chunks_and_finds_the_sequence() -> None:
    msgs = [StockDirectory(1, 0, 5, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N", 0, "N"),
            AddOrder(1, 0, 5, 42, "B", 100, "AAPL", 1892500)]
    stream = b"".join(glimpse.frame(itch.encode(m)) for m in msgs) + glimpse.end_of_snapshot(12345)
    assert glimpse.end_of_snapshot(12345) == b"\x00\x15G12345" + b" " * 15
    reader = glimpse.SnapshotReader()
    for i in range(0, len(stream), 7):
        reader.feed(stream[i:i + 7])
    assert reader.done and reader.next_seq == 12345 and reader.messages == msgs


def test_a_bad_end_of_snapshot_is_an_error() -> None:
    reader = glimpse.SnapshotReader()
    with pytest.raises(ItchError):
        reader.feed(glimpse.frame(b"G" + b"x" * 20))
