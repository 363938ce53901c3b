"""The flush's own WebSocket framing: the same bytes an independent implementation (websockets) makes for a
server's frame, at every length boundary of the header, binary and text."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from fanout.wire import ws_frame, ws_frames


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_binary_frame_is_what_websockets_serializes(n: int) -> None:
    payload = bytes(i % 251 for i in range(n))
    assert ws_frame(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False)


@pytest.mark.parametrize("text", ["", '{"quotes":{}}', "é" * 70, "x" * 200, "€" * 30_000])
def test_a_text_frame_carries_utf8_with_the_byte_length(text: str) -> None:
    assert ws_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def test_several_frames_are_written_as_one_buffer_in_order() -> None:
    messages: list[bytes | str] = [b"\x12\x03abc", '{"trades":{}}', b"x" * 300]
    data, payload = ws_frames(messages)
    assert data == b"".join(Frame(Opcode.TEXT if isinstance(m, str) else Opcode.BINARY,
                                  m.encode() if isinstance(m, str) else m).serialize(mask=False) for m in messages)
    assert payload == 5 + 13 + 300
