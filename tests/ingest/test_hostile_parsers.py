"""Every feed parser against hostile input: it returns, or raises only its documented error, and bad input
changes nothing but a counter (issue 10, item 7). The book kernel's run is in tests/normalize."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import glimpse, itch, moldudp64
from ingest.batch import PAD, decode_buffer, frame
from ingest.itch import LENGTHS, ItchError
from ingest.moldudp64 import MoldError
from ingest.packets import _framed_end, _framed_end_py, framing_error
from ingest.session import TRANSITIONS, FeedSession, State

from .hostile import framed, itch_message, itch_stream, mold_packet, mutated

PARSER = settings(max_examples=200)


@PARSER
@given(mold_packet())
def test_moldudp64_decode_returns_consistent_blocks_or_raises_mold_error(data: bytes) -> None:
    try:
        p = moldudp64.decode_packet(data)
    except MoldError as exc:
        assert exc.code in {"truncated_header", "bad_session", "count_mismatch", "truncated_block"}
        return
    assert len(p.blocks) == (0 if p.message_count in (0, 0xFFFF) else p.message_count)
    end = moldudp64.HEADER_SIZE
    for off, n in p.blocks:
        assert off == end + 2 and off + n <= len(data)
        end = off + n
    assert p.message_count in (0, 0xFFFF) or end == len(data)


@PARSER
@given(st.binary(max_size=60), st.integers(-5, 80), st.one_of(st.none(), st.integers(-5, 80)))
def test_itch_decode_raises_only_itch_error_whatever_the_offset(data: bytes, offset: int,
                                                               length: int | None) -> None:
    try:
        m = itch.decode(data, offset, length)
    except ItchError:
        return
    assert offset >= 0 and offset + LENGTHS[data[offset]] <= len(data)
    assert itch.encode(m)[0] == data[offset]


@PARSER
@given(itch_message())
def test_itch_decode_of_any_message_of_the_right_length_round_trips(body: bytes) -> None:
    try:
        m = itch.decode(body)
    except ItchError:
        assert body[:1] == b"" or LENGTHS.get(body[0]) != len(body)
        return
    assert len(itch.encode(m)) == len(body)


@PARSER
@given(itch_stream(), st.integers(1, 50))
def test_glimpse_reader_raises_only_itch_error_and_chunking_changes_nothing(data: bytes, chunk: int) -> None:
    def read(pieces: list[bytes]) -> tuple[str, int | None, str | None, int, int]:
        reader = glimpse.SnapshotReader(max_messages=1000)
        try:
            for piece in pieces:
                reader.feed(piece)
        except ItchError as exc:
            return exc.code, None, None, 0, 0
        return "ok", reader.next_seq, reader.session, len(reader.messages), reader.errors

    tail = glimpse.end_of_snapshot(12345, "TICKFAN001")
    for stream in (data, data + tail, framed([b"G" + b"\xb2" * 20]), framed([b"G" + b"9" * 20])):
        whole = read([stream])
        assert whole == read([stream[i:i + chunk] for i in range(0, len(stream), chunk)])
        assert whole[0] in {"ok", "bad_end_of_snapshot", "snapshot_too_large"}
        assert whole[1] is None or 0 <= whole[1] < 1 << 64


@PARSER
@given(mold_packet())
def test_a_malformed_or_foreign_datagram_changes_nothing_in_the_session(data: bytes) -> None:
    s = FeedSession("TICKFAN001", adopt_session=False)
    s.on_packet(moldudp64.encode_packet("TICKFAN001", 1, [b"S" + bytes(11)]))
    before = (s.next_seq, s.state, s.held_messages, s.needs_rebuild)
    counters = dict(s.counters)
    s.on_packet(data, now=0.0)
    assert s.state in TRANSITIONS and s.held_bytes <= 64 << 20
    rejected = ("malformed_packets", "unknown_session", "implausible_jump", "duplicate_packets")
    if any(s.counters[k] > counters[k] for k in rejected):
        assert (s.next_seq, s.state, s.held_messages, s.needs_rebuild) == before
    else:  # taken: it can only move the stream on (or open a gap to recover)
        assert s.next_seq is not None and before[0] is not None and s.next_seq >= before[0]
        assert s.state in (State.IN_SYNC, State.RECOVERING)


@PARSER
@given(itch_stream())
def test_the_batch_framer_finds_only_well_formed_messages_inside_the_buffer(data: bytes) -> None:
    buf, cols, counts = decode_buffer(data)
    assert buf.shape[0] == len(data) + PAD and 0 <= counts.consumed <= len(data)
    offsets = cols.offset
    assert cols.messages == counts.messages == offsets.shape[0]
    for off in offsets.tolist():
        size = (data[off - 2] << 8) | data[off - 1]
        assert off + size <= counts.consumed and LENGTHS[data[off]] == size
    assert np.all(np.diff(offsets) > 0)
    # framing a prefix of the buffer never reads past that prefix
    cut = len(data) // 2
    part, part_counts = frame(buf, cut)
    assert part_counts.consumed <= cut and all(o + LENGTHS[data[o]] <= cut for o in part.tolist())


@PARSER
@given(st.data())
def test_mutated_valid_packets_never_break_the_session(data: st.DataObject) -> None:
    s = FeedSession("TICKFAN001")
    seq = 1
    for _ in range(5):
        messages = [b"S" + bytes(11)] * data.draw(st.integers(1, 3))
        packet = moldudp64.encode_packet("TICKFAN001", seq, messages)
        s.on_packet(data.draw(mutated(packet)), now=0.0)
        s.on_packet(packet, now=0.0)
        seq += len(messages)
        assert s.state in TRANSITIONS
    # a forged first packet may have set the sequence anywhere: the real stream, consistent for a recovery
    # timeout, is followed if it was implausibly far; within the bound, a rebuild resets it
    for now in (10.0, 20.0):
        s.on_packet(moldudp64.encode_packet("TICKFAN001", seq, [b"S" + bytes(11)]), now=now)
        seq += 1
    assert s.next_seq is not None and seq <= s.next_seq <= seq + s.max_gap
    s.begin_rebuild() if s.state is not State.REBUILDING else None
    s.rebuilt(seq, now=30.0)
    assert len(s.on_packet(moldudp64.encode_packet("TICKFAN001", seq, [b"S" + bytes(11)]), now=30.0)) == 1
    assert s.state is State.IN_SYNC and s.next_seq == seq + 1


@PARSER
@given(st.one_of(mold_packet(), st.binary(max_size=300)), st.integers(0, 70))
def test_the_compiled_framing_check_agrees_with_the_interpreted_one(data: bytes, count: int) -> None:
    """``framing_error`` frames datagrams in a compiled loop; any bytes, any count: the same answer as the
    interpreted walk (what the session's other buffers, bytearrays and views, still take)."""
    real = moldudp64.HEADER.unpack_from(data)[2] if len(data) >= moldudp64.HEADER_SIZE else count
    for n in (count, real):
        assert _framed_end(data, n) == _framed_end_py(data, n)
        assert framing_error(data, n) == framing_error(bytearray(data), n)
