"""Snapshot stream codec (pure), modelled on Nasdaq GLIMPSE 5.0: how a stale feed handler rebuilds.

A snapshot is a TCP byte stream of length-prefixed ITCH 5.0 messages (2-byte big-endian length, then the
message): the stock directory, each symbol's trading action, and every live order as an Add Order. It ends
with an End of Snapshot message: type 'G' followed by the MoldUDP64 sequence number of the next real-time
message as 20 ASCII digits, space-padded on the right, optionally followed by the MoldUDP64 session name
(10 ASCII characters, space-padded; in GLIMPSE proper the SoupBinTCP login answer carries it). Everything the
books need up to that sequence is in the snapshot; the real-time feed from that sequence on completes it, and
a node that was not told its session (``--session``) pins the one its first snapshot names.
"""

from __future__ import annotations

from vocab.framing import frame

from .itch import ItchError, decode
from .messages import Message

END_OF_SNAPSHOT = ord("G")
END_OF_SNAPSHOT_LENGTH = 21
END_OF_SNAPSHOT_WITH_SESSION = 31


def end_of_snapshot(next_seq: int, session: str | None = None) -> bytes:
    body = b"G" + str(next_seq).encode().ljust(20, b" ")
    if session is not None:
        body += session.encode("ascii").ljust(10, b" ")[:10]
    return frame(body)


class SnapshotReader:
    """Feed it bytes as they arrive; it collects messages until the End of Snapshot."""

    def __init__(self, max_messages: int = 5_000_000) -> None:
        self.messages: list[Message] = []
        self.next_seq: int | None = None
        self.session: str | None = None  # the feed's session, if the End of Snapshot names it
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
            if n in (END_OF_SNAPSHOT_LENGTH, END_OF_SNAPSHOT_WITH_SESSION) and body[0] == END_OF_SNAPSHOT:
                digits = body[1:END_OF_SNAPSHOT_LENGTH]
                # ASCII digits only ("²" is a digit to int() and isdigit()), and a sequence MoldUDP64 can carry
                text = digits.rstrip(b" ")
                if not text or not all(0x30 <= b <= 0x39 for b in text) or int(text) >= 1 << 64:
                    raise ItchError("bad_end_of_snapshot", f"bad End of Snapshot: {body!r}")
                session = body[END_OF_SNAPSHOT_LENGTH:].rstrip(b" ")
                if n == END_OF_SNAPSHOT_WITH_SESSION:
                    if not session or not all(0x21 <= b <= 0x7E for b in session):
                        raise ItchError("bad_end_of_snapshot", f"bad session in End of Snapshot: {body!r}")
                    self.session = session.decode("ascii")
                self.next_seq = int(text)
                break
            try:
                self.messages.append(decode(body))
            except ItchError:
                self.errors += 1
            if len(self.messages) > self.max_messages:
                raise ItchError("snapshot_too_large", f"snapshot over {self.max_messages} messages")
        del buf[:pos]
