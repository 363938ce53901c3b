"""The snapshot stream: length-prefixed ITCH ending with End of Snapshot, read in arbitrary chunks."""

from __future__ import annotations

import pytest

from ingest import glimpse, itch
from ingest.itch import ItchError
from ingest.messages import AddOrder, Message
from tests.conftest import directory
from vocab.framing import frame


def test_reader_reassembles_chunks_and_finds_the_sequence() -> None:
    msgs: list[Message] = [directory(1, "AAPL", timestamp=5), AddOrder(1, 0, 5, 42, "B", 100, "AAPL", 1892500)]
    stream = b"".join(frame(itch.encode(m)) for m in msgs) + glimpse.end_of_snapshot(12345)
    assert glimpse.end_of_snapshot(12345) == b"\x00\x15G12345" + b" " * 15
    reader = glimpse.SnapshotReader()
    for i in range(0, len(stream), 7):
        reader.feed(stream[i:i + 7])
    assert reader.done and reader.next_seq == 12345
    assert [itch.encode(m) for m in reader.messages] == [itch.encode(m) for m in msgs]


def test_a_bad_end_of_snapshot_is_an_error() -> None:
    reader = glimpse.SnapshotReader()
    with pytest.raises(ItchError):
        reader.feed(frame(b"G" + b"x" * 20))
