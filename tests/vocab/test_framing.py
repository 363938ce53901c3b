"""Length-prefixed framing: what every ITCH file, MoldUDP64 block and snapshot stream is made of."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.framing import MAX_MESSAGE, frame, frame_all, messages_of, split_frames


def test_frame_is_a_big_endian_length_then_the_message() -> None:
    assert frame(b"abc") == b"\x00\x03abc"
    assert frame(b"") == b"\x00\x00"
    assert frame_all([b"a", b"bc"]) == b"\x00\x01a\x00\x02bc"


def test_a_message_too_long_for_two_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        frame(b"x" * (MAX_MESSAGE + 1))


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_split_undoes_frame_all(messages: list[bytes]) -> None:
    assert messages_of(frame_all(messages)) == messages


def test_a_truncated_tail_is_not_a_message() -> None:
    buf = frame_all([b"one", b"two"])
    assert list(split_frames(buf[:-1])) == [(2, 3)]
    assert messages_of(buf + b"\x00") == [b"one", b"two"]  # half a length prefix: nothing
