"""The gap-recovery parts of the feed session (pure): packets held beyond a hole, and the re-request window.

``HeldPackets`` keeps the packets that arrive beyond a hole whole and undecoded, and gives them back in
sequence order once the hole before them is filled: O(log n) per packet, never per message, so a session
that falls behind under a burst catches up. ``plan_requests`` decides which missing ranges to ask the
rewinder for: in sequence order, a bounded window at a time. Neither knows the session's state machine
(``ingest.session`` drives them).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import NamedTuple

from .packets import skip_messages

MAX_MISSING_RANGES = 1024
MAX_REQUEST = 1000  # messages per re-request packet: a rewinder answers with a bounded burst
MAX_IN_FLIGHT = 32  # re-request packets outstanding at once
WINDOW = MAX_REQUEST * MAX_IN_FLIGHT  # messages asked for and not yet arrived, at most


class Gap(NamedTuple):
    first_seq: int
    length: int


class Request(NamedTuple):
    """Ask the rewinder to re-send ``count`` messages from ``first_seq`` of ``session``."""

    session: str
    first_seq: int
    message_count: int


DEFAULT_MAX_HELD_BYTES = 64 << 20


class HeldPackets:
    """Packets held beyond a hole: first sequence -> (message count, length-prefixed messages), with a heap of
    those first sequences (the held packet to release next is always on top). Bounded by ``max_messages``
    and by ``max_bytes`` of payload: a count alone would let 2,000 one-message packets of 64 KiB each hold
    125 MiB (the count cap allowed ~122 GiB)."""

    def __init__(self, max_messages: int, max_bytes: int = DEFAULT_MAX_HELD_BYTES) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.messages = 0  # messages held
        self.bytes = 0  # payload bytes held
        self._by_start: dict[int, tuple[int, bytes]] = {}
        self._starts: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._by_start)

    def first(self) -> int | None:
        """The first sequence of the earliest packet held (None if none is)."""
        return self._starts[0] if self._starts else None

    def hold(self, payload: bytes, seq: int, count: int, front: int) -> str | None:
        """Keep a packet; None if kept, else the counter its ``count`` messages belong to: a copy already held
        (``duplicate_messages``), or no room (``pending_overflow``: dropped, to be asked for again when
        ``front``, the next sequence the stream needs, reaches it). Room is always found at the front."""
        old = self._by_start.get(seq)
        if old is not None:
            if old[0] >= count:  # the same packet again (or a shorter copy): nothing new
                return "duplicate_messages"
            if seq > front and self.bytes - len(old[1]) + len(payload) > self.max_bytes:
                return "pending_overflow"
            self.messages -= old[0]
            self.bytes -= len(old[1])
        elif seq > front and (self.messages + count > self.max_messages
                              or self.bytes + len(payload) > self.max_bytes):
            return "pending_overflow"
        else:
            heapq.heappush(self._starts, seq)
        self._by_start[seq] = (count, payload)
        self.messages += count
        self.bytes += len(payload)
        return None

    def end(self) -> int | None:
        """The sequence after the last message held (None if nothing is)."""
        return max((s + c for s, (c, _) in self._by_start.items()), default=None)

    def discard_from(self, limit: int) -> int:
        """Drop every held packet that starts at or after ``limit``; returns the messages dropped."""
        gone = [s for s in self._by_start if s >= limit]
        dropped = 0
        for s in gone:
            count, payload = self._by_start.pop(s)
            self.messages -= count
            self.bytes -= len(payload)
            dropped += count
        if gone:
            self._starts = list(self._by_start)
            heapq.heapify(self._starts)
        return dropped

    def release(self, nxt: int) -> tuple[list[bytes], int, int]:
        """Take every held packet that continues the stream from ``nxt``: (their messages from ``nxt`` on, the
        sequence after them, messages that were already had)."""
        held, starts = self._by_start, self._starts
        chunks: list[bytes] = []
        dup = 0
        while starts and starts[0] <= nxt:
            s = heapq.heappop(starts)
            count, payload = held.pop(s)
            self.messages -= count
            self.bytes -= len(payload)
            end = s + count
            if end <= nxt:
                dup += count
                continue
            if s < nxt:
                dup += nxt - s
                payload = skip_messages(payload, nxt - s)
            chunks.append(payload)
            nxt = end
        return chunks, nxt, dup


def plan_requests(session: str, nxt: int, requested_until: int, front_end: int,
                  holes: Iterable[tuple[int, int]]) -> tuple[list[Request], int]:
    """The requests to send now, and the sequence below which everything missing has then been asked for.

    Missing ranges are the hole at the front, [``nxt``, ``front_end``), then ``holes`` ([first, end) in
    sequence order). Asks in sequence order, keeping at most ``WINDOW`` messages asked for beyond ``nxt``
    (a rewinder's answers come in a burst: an unbounded window would overflow the socket buffer they arrive
    in), nothing below ``requested_until`` (already asked), and no request smaller than ``MAX_REQUEST``
    unless a hole is smaller.
    """
    limit = nxt + WINDOW
    start = max(nxt, requested_until)
    out: list[Request] = []
    if start >= limit or (start > nxt and limit - start < MAX_REQUEST):
        return out, requested_until
    ranges = [(nxt, front_end)]
    ranges += [h for h in holes if h[0] >= front_end]
    for first, end in ranges:
        first = max(first, start)
        while first < end and first < limit and len(out) < MAX_IN_FLIGHT:
            count = min(end - first, MAX_REQUEST, limit - first)
            out.append(Request(session, first, count))
            first += count
            start = first
        if start >= limit or len(out) >= MAX_IN_FLIGHT:
            break
    return out, (start if out else requested_until)
