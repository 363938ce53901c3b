"""MoldUDP64 feed session state (pure, sans-I/O): datagrams in, decoded messages in sequence order out.

The session is an explicit state machine:

    IN_SYNC --gap--> RECOVERING --hole filled--> IN_SYNC
                         |
                         +--recovery timeout--> STALE (hole skipped; the books can no longer be vouched
                                                  |    for until rebuilt from a snapshot)
                                                  +--begin_rebuild()--> REBUILDING --rebuilt(seq)--> IN_SYNC

In sync, each packet's new messages are decoded and returned at once. On a gap the session keeps what
arrives beyond the hole (bounded by ``max_pending``) and asks, through ``take_requests``, for the missing
range to be re-sent by the re-request server ("rewinder"); re-sent packets go through ``on_packet`` like
any other, from any line, and whichever copy of a sequence number comes first wins (A/B arbitration is
this same rule). Time is passed in (``now``), never read, so the machine can be tested step by step.
Nothing here raises on bad input: every problem has its own counter.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import NamedTuple

from .itch import DECODERS, STRUCTS, decode_directory
from .messages import Message, StockDirectory
from .moldudp64 import END_OF_SESSION_COUNT, HEADER, HEADER_SIZE, HEARTBEAT_COUNT, MoldError, decode_packet
from .partition import PartitionFilter

MAX_MISSING_RANGES = 1024
MAX_REQUEST = 1000  # messages per re-request packet: a rewinder answers with a bounded burst
MAX_IN_FLIGHT = 32  # re-request packets outstanding at once


def _decode_directory(data: bytes, off: int) -> StockDirectory:
    return decode_directory(STRUCTS[b"R"].unpack_from(data, off))


class Gap(NamedTuple):
    first_seq: int
    length: int


class Request(NamedTuple):
    """Ask the rewinder to re-send ``count`` messages from ``first_seq`` of ``session``."""

    session: str
    first_seq: int
    message_count: int


class State(enum.Enum):
    IN_SYNC = "in_sync"
    RECOVERING = "recovering"
    STALE = "stale"
    REBUILDING = "rebuilding"  # live messages are held while a snapshot is fetched


COUNTER_NAMES = (
    "packets", "bytes", "messages", "heartbeats", "end_of_session", "duplicate_packets",
    "duplicate_messages", "gaps", "messages_missed", "unknown_session", "malformed_packets",
    "truncated_messages", "unknown_message_types", "requests_sent", "messages_recovered",
    "recoveries", "recovery_failures", "pending_overflow", "other_partition", "sequence_backwards",
)
_DIRECTORY, _SYSTEM_EVENT = ord("R"), ord("S")
_DIRECTORY_SIZE = STRUCTS[b"R"].size


class FeedSession:
    def __init__(self, session: str | None = None, *, recovery_timeout: float = 2.0,
                 retry_interval: float = 0.2, max_pending: int = 500_000,
                 partition: PartitionFilter | None = None) -> None:
        # with a partition, only its symbols' messages are decoded and returned (all are sequenced)
        self.partition = partition
        # None: adopt the first session name seen (a feed carries one session per day).
        self.session = session
        # the session as it appears on the wire (compared per packet on the hot path)
        self._raw_session = session.encode("ascii", "replace").ljust(10, b" ")[:10] if session is not None else b""
        self.next_seq: int | None = None
        self.state = State.IN_SYNC
        self.ended = False
        self.recovery_timeout = recovery_timeout
        self.retry_interval = retry_interval
        self.max_pending = max_pending
        self.missing: deque[Gap] = deque(maxlen=MAX_MISSING_RANGES)
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.last_error: str | None = None
        # while recovering: seq -> raw message bytes received beyond the hole
        self._pending: dict[int, bytes] = {}
        self._hole_since = 0.0
        self._last_request = -1.0
        self._requested_until = 0  # end (exclusive) of the range last asked for
        self._last_packet_seq = 0  # first sequence of the previous data packet
        self._requests: list[Request] = []
        # the sequence number after the highest one known to exist (from packets and heartbeats)
        self._known_end = 0
        # set when a hole had to be skipped: some book may be wrong until rebuilt from a snapshot
        self.needs_rebuild = False
        # seconds from each gap's detection to its last message applied, most recent last
        self.recovery_seconds: deque[float] = deque(maxlen=256)

    # ------------------------------------------------------------------ input
    def take_raw(self, data: bytes) -> bytes | None:
        """For a batched consumer: if ``data`` is exactly the next packet of the stream, well framed, advance
        over it and return its message blocks (length-prefixed ITCH, as in a capture) undecoded.

        None means "not that simple" (a gap, an overlap, a heartbeat, another session, a partition filter,
        recovery in progress, bad framing): the caller then uses ``on_packet``, which handles every case.
        """
        expected = self.next_seq
        if self.state is not State.IN_SYNC or expected is None or self.partition is not None \
                or len(data) <= HEADER_SIZE:
            return None
        raw_session, seq, count = HEADER.unpack_from(data)
        if seq != expected or count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT) or raw_session != self._raw_session:
            return None
        pos, end = HEADER_SIZE, len(data)
        for _ in range(count):  # framing must hold exactly, or the sequence would drift
            if pos + 2 > end:
                return None
            pos += 2 + ((data[pos] << 8) | data[pos + 1])
        if pos != end:
            return None
        c = self.counters
        c["packets"] += 1
        c["bytes"] += end
        c["messages"] += count
        if seq < self._last_packet_seq:
            c["sequence_backwards"] += 1
        self._last_packet_seq = seq
        self.next_seq = seq + count
        if self.next_seq > self._known_end:
            self._known_end = self.next_seq
        return data[HEADER_SIZE:]

    def on_packet(self, data: bytes, now: float = 0.0) -> list[Message]:
        """Decode one datagram; return the messages it makes applicable, in sequence order."""
        c = self.counters
        c["packets"] += 1
        c["bytes"] += len(data)
        expected = self.next_seq
        if self.state is State.IN_SYNC and expected is not None and self.partition is None \
                and len(data) >= HEADER_SIZE:
            # The hot path: a packet that continues the stream, framed and decoded in one walk.
            raw_session, seq, count = HEADER.unpack_from(data)
            if seq <= expected < seq + count and count != END_OF_SESSION_COUNT and raw_session == self._raw_session:
                out = self._walk(data, count, expected - seq)
                if out is not None:
                    if seq < self._last_packet_seq:
                        c["sequence_backwards"] += 1
                    if seq < expected:
                        c["duplicate_messages"] += expected - seq
                    self._last_packet_seq = seq
                    end = seq + count
                    self.next_seq = end
                    if end > self._known_end:
                        self._known_end = end
                    return out
                # malformed: the general path below counts it
        try:
            packet = decode_packet(data)
        except MoldError as exc:
            c["malformed_packets"] += 1
            self.last_error = f"{exc.code}: {exc}"
            return []
        if self.session is None:
            self.session = packet.session
            self._raw_session = data[:10]
        elif packet.session != self.session:
            c["unknown_session"] += 1
            self.last_error = f"packet from session {packet.session!r}, expected {self.session!r}"
            return []
        seq, count = packet.seq, packet.message_count
        if count == HEARTBEAT_COUNT or count == END_OF_SESSION_COUNT:
            if count == HEARTBEAT_COUNT:
                c["heartbeats"] += 1
            else:
                c["end_of_session"] += 1
                self.ended = True
            # A heartbeat carries the next sequence number: a higher one means we missed messages.
            if expected is None:
                self.next_seq = seq
            elif seq > self._known_end:
                self._known_end = seq
                if self.state is not State.RECOVERING and seq > expected:
                    self._open_gap(expected, seq, now)
            return []
        if expected is None:
            expected = self.next_seq = seq
        if seq < self._last_packet_seq:
            # reordered, re-sent, or a sequence that jumped back: its own counter, whatever happens next
            self.counters["sequence_backwards"] += 1
        self._last_packet_seq = seq
        end = seq + count
        if end > self._known_end:
            self._known_end = end
        if end <= expected:
            c["duplicate_packets"] += 1
            c["duplicate_messages"] += count
            return []
        if self.state is State.REBUILDING:
            self._hold(packet.data, packet.blocks, seq, expected)
            return []
        if self.state is not State.RECOVERING and seq <= expected:
            skip = expected - seq
            if skip:
                c["duplicate_messages"] += skip
            self.next_seq = end
            return self._decode(packet.data, packet.blocks, skip)
        # Out of order: hold what is new beyond next_seq, then apply whatever became contiguous.
        self._hold(packet.data, packet.blocks, seq, expected)
        if self.state is not State.RECOVERING:
            self._open_gap(expected, seq, now)
        return self._drain(now)

    def poll(self, now: float) -> list[Message]:
        """Let time pass: retry requests, and give up on a hole that outlived the recovery timeout."""
        if self.state is not State.RECOVERING:
            return []
        if now - self._hole_since >= self.recovery_timeout:
            return self._give_up(now)
        if now - self._last_request >= self.retry_interval:
            self._request(now)
        return []

    def take_requests(self) -> list[Request]:
        out, self._requests = self._requests, []
        return out

    def begin_rebuild(self) -> None:
        """A snapshot is being fetched: hold live messages (bounded) instead of applying them."""
        self.state = State.REBUILDING
        self._requests.clear()

    def rebuilt(self, next_seq: int, now: float = 0.0) -> list[Message]:
        """The books now hold a snapshot taken just before ``next_seq``: continue from there.

        Returns the held messages from ``next_seq`` on, in order; a hole among them is recovered as usual.
        """
        self.next_seq = next_seq
        self._pending = {s: m for s, m in self._pending.items() if s >= next_seq}
        self.needs_rebuild = False
        self.state = State.RECOVERING
        self._hole_since = now
        out = self._drain(now)
        if self.state is State.RECOVERING and (self._pending or self.next_seq < self._known_end):
            self._request(now)
        else:
            self.state = State.IN_SYNC
        return out

    def abort_rebuild(self, now: float = 0.0) -> list[Message]:
        """The snapshot could not be had: release what was held and stay stale."""
        self.state = State.RECOVERING
        self._hole_since = now - self.recovery_timeout  # held holes are already past their chance
        return self.poll(now)

    # ------------------------------------------------------------------ recovery
    def _open_gap(self, expected: int, seq: int, now: float) -> None:
        self.counters["gaps"] += 1
        self.missing.append(Gap(expected, seq - expected))
        if self.state is not State.RECOVERING:
            self.state = State.RECOVERING
            self._hole_since = now
            self._last_request = -1.0
        self.next_seq = expected
        self._request(now)

    def _hold(self, data: bytes, blocks: list[tuple[int, int]], seq: int, expected: int) -> None:
        pending = self._pending
        dup = 0
        for i, (off, n) in enumerate(blocks):
            s = seq + i
            if s < expected or s in pending:
                dup += 1
                continue
            if len(pending) >= self.max_pending:
                self.counters["pending_overflow"] += 1
                continue
            pending[s] = data[off:off + n]
        if dup:
            self.counters["duplicate_messages"] += dup

    def _drain(self, now: float) -> list[Message]:
        pending = self._pending
        nxt = self.next_seq
        assert nxt is not None
        run: list[bytes] = []
        while nxt in pending:
            run.append(pending.pop(nxt))
            nxt += 1
        self.next_seq = nxt
        recovered = self._decode_raw(run)
        if not pending and nxt >= self._known_end:
            if self.state is State.RECOVERING:
                self.state = State.STALE if self.needs_rebuild else State.IN_SYNC
                self.counters["recoveries"] += 1
                self.recovery_seconds.append(now - self._hole_since)
        elif run and self.state is State.RECOVERING and nxt >= self._requested_until:
            self._request(now)  # what we asked for has come: the next hole, straight away
        self.counters["messages_recovered"] += len(run)
        return recovered

    def _request(self, now: float) -> None:
        nxt = self.next_seq
        if nxt is None:
            return
        hole_end = min(self._pending) if self._pending else self._known_end
        # a window of requests in flight at once: one at a time, a big hole (a burst) refills at the pace of
        # one round trip per 1,000 messages, slower than the live feed grows behind it
        start = nxt
        for _ in range(MAX_IN_FLIGHT):
            count = min(hole_end - start, MAX_REQUEST)
            if count <= 0:
                break
            self._requests.append(Request(self.session or "", start, count))
            self.counters["requests_sent"] += 1
            start += count
        if start > nxt:
            self._requested_until = start
            self._last_request = now

    def _give_up(self, now: float) -> list[Message]:
        """Skip the hole: from here on the books cannot be vouched for until rebuilt."""
        nxt = self.next_seq
        assert nxt is not None
        first = min(self._pending) if self._pending else max(self._known_end, nxt)
        self.counters["recovery_failures"] += 1
        self.counters["messages_missed"] += first - nxt
        self.needs_rebuild = True
        self.next_seq = first
        self.state = State.STALE
        out = self._drain(now)
        if self._pending:  # another hole behind this one: keep recovering it, on a fresh clock
            self.state = State.RECOVERING
            self._hole_since = now
            self._request(now)
        else:
            self.state = State.STALE
        return out

    # ------------------------------------------------------------------ decoding
    def _decode(self, data: bytes, blocks: list[tuple[int, int]], skip: int) -> list[Message]:
        out: list[Message] = []
        append = out.append
        decoders = DECODERS
        bad_type = truncated = 0
        part = self.partition
        accept = part.accept if part is not None else None
        for off, n in blocks[skip:] if skip else blocks:
            if accept is not None and n >= 3:
                t = data[off]
                if t == _DIRECTORY:
                    if n == _DIRECTORY_SIZE:
                        msg = _decode_directory(data, off)
                        assert part is not None
                        if part.learn(msg.locate, msg.stock):
                            append(msg)
                        else:
                            self.counters["other_partition"] += 1
                    else:
                        truncated += 1
                    continue
                if t != _SYSTEM_EVENT and not accept[(data[off + 1] << 8) | data[off + 2]]:
                    self.counters["other_partition"] += 1
                    continue
            entry = decoders.get(data[off]) if n else None
            if entry is None:
                if n:
                    bad_type += 1
                else:
                    truncated += 1
                continue
            unpack, size, build = entry
            if n != size:
                truncated += 1
                continue
            append(build(unpack(data, off)))
        self._count(len(out), bad_type, truncated)
        return out

    def _walk(self, data: bytes, count: int, skip: int) -> list[Message] | None:
        """Frame and decode a packet's messages in one pass, skipping the first ``skip`` (already applied).

        Returns None, with nothing counted, if the packet's framing is broken (the caller then drops it
        whole); a bad message inside good framing is counted and skipped, as in ``_decode``.
        """
        pos = HEADER_SIZE
        end = len(data)
        for _ in range(skip):
            if pos + 2 > end:
                return None
            pos += 2 + ((data[pos] << 8) | data[pos + 1])
        out: list[Message] = []
        append = out.append
        decoders = DECODERS
        bad_type = truncated = 0
        for _ in range(count - skip):
            if pos + 2 > end:
                return None
            n = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if pos + n > end:
                return None
            entry = decoders.get(data[pos]) if n else None
            if entry is None:
                if n:
                    bad_type += 1
                else:
                    truncated += 1
            elif n != entry[1]:
                truncated += 1
            else:
                append(entry[2](entry[0](data, pos)))
            pos += n
        if pos != end:
            return None
        self._count(len(out), bad_type, truncated)
        return out

    def _decode_raw(self, raw: list[bytes]) -> list[Message]:
        """Held messages, through the one decode loop (recovery is rare: one copy is fine here)."""
        blocks: list[tuple[int, int]] = []
        off = 0
        for m in raw:
            blocks.append((off, len(m)))
            off += len(m)
        return self._decode(b"".join(raw), blocks, 0)

    def _count(self, good: int, bad_type: int, truncated: int) -> None:
        c = self.counters
        c["messages"] += good
        if bad_type:
            c["unknown_message_types"] += bad_type
        if truncated:
            c["truncated_messages"] += truncated
