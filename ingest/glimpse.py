"""Snapshot stream codec (pure), modelled on Nasdaq GLIMPSE 5.0: how a stale feed handler rebuilds.

A snapshot is a TCP byte stream of length-prefixed ITCH 5.0 messages (2-byte big-endian length, then the
message): the stock directory, each symbol's trading action, and every live order as an Add Order. It ends
with an End of Snapshot message: type 'G' followed by the MoldUDP64 sequence number of the next real-time
message as 20 ASCII digits, space-padded on the right. Everything the books need up to that sequence is in
the snapshot; the real-time feed from that sequence on completes it.
"""

from __future__ import annotations

from vocab.digits import parse_ascii_int
from vocab.framing import frame

from .itch import ItchError, decode
from .messages import Message

END_OF_SNAPSHOT = ord("G")
END_OF_SNAPSHOT_LENGTH = 21


def end_of_snapshot(next_seq: int) -> bytes:
    return frame(b"G" + str(next_seq).encode().ljust(20, b" "))


class SnapshotReader:
    """Feed it bytes as they arrive; it collects messages until the End of Snapshot."""

    def __init__(self, max_messages: int = 5_000_000) -> None:
        self.messages: list[Message] = []
        self.next_seq: int | None = None
        self.max_messages = max_messages
        self._buf = bytearray()
        self.errors = 0

    @property
    def done(self) -> bool:
        return self.next_seq is not None

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        while not self.done and len(buf) - pos >= 2:
            n = (buf[pos] << 8) | buf[pos + 1]
            if len(buf) - pos - 2 < n:
                break
            body = bytes(buf[pos + 2:pos + 2 + n])
            pos += 2 + n
            if n == END_OF_SNAPSHOT_LENGTH and body[0] == END_OF_SNAPSHOT:
                try:
                    self.next_seq = parse_ascii_int(body[1:].strip(b" "))
                except ValueError:
                    raise ItchError("bad_end_of_snapshot", f"bad End of Snapshot: {body!r}") from None
                break
            try:
                self.messages.append(decode(body))
            except ItchError:
                self.errors += 1
            if len(self.messages) > self.max_messages:
                raise ItchError("snapshot_too_large", f"snapshot over {self.max_messages} messages")
        del buf[:pos]
