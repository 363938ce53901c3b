"""Fuzz target: a GLIMPSE-style snapshot stream into ``SnapshotReader``, whole and in pieces.

Contract: ``feed`` raises only ``ItchError`` (a bad End of Snapshot, a snapshot over its bound); how the
stream is cut into TCP reads changes nothing; a sequence read is one MoldUDP64 can carry.
Run: ``python -m tests.fuzz.run --seconds 15 glimpse``.
"""

from __future__ import annotations

from ingest import glimpse, itch
from ingest.itch import ItchError
from ingest.sample import every_kind
from vocab.framing import frame_all

SEEDS: list[bytes] = [
    frame_all(itch.encode(m) for m in every_kind()) + glimpse.end_of_snapshot(42),
    frame_all(itch.encode(m) for m in every_kind()) + glimpse.end_of_snapshot(7, "TICKFAN001"),
    glimpse.end_of_snapshot(18446744073709551615),
    frame_all([b"G" + "²".encode() + b"1" * 18]),
]


def read(pieces: list[bytes]) -> tuple[object, ...]:
    reader = glimpse.SnapshotReader(max_messages=500)
    try:
        for piece in pieces:
            reader.feed(piece)
    except ItchError as exc:
        return ("error", exc.code)
    return (reader.next_seq, reader.session, len(reader.messages), reader.errors)


def one_input(data: bytes) -> None:
    whole = read([data])
    step = (data[0] % 7 + 1) if data else 1
    assert read([data[i:i + step] for i in range(0, len(data), step)]) == whole
    if whole[0] != "error" and whole[0] is not None:
        assert isinstance(whole[0], int) and 0 <= whole[0] < 1 << 64
        assert whole[1] is None or (isinstance(whole[1], str) and whole[1].isascii())


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
