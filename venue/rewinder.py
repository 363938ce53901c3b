"""The MoldUDP64 re-request server ("rewinder"): a bounded history of the feed, re-sent on request over UDP.

``Rewinder.answer`` is the pure core (a request datagram in, the packets that answer it out);
``datagram_received`` only sends them back to the requester.
"""

from __future__ import annotations

import asyncio

from ingest.moldudp64 import MAX_PAYLOAD, MoldError, PacketBuilder, decode_request

MAX_ANSWER = 0xFFFE  # messages re-sent for one request at most (a MoldUDP64 count is 16-bit, 0xFFFF is EOS)


class Rewinder(asyncio.DatagramProtocol):
    """The MoldUDP64 re-request server: answers (session, sequence, count) from a bounded history.

    A request for messages that have left the history gets no answer (as with a real rewinder), so the
    requester times out and marks its books stale; it is counted here as ``out_of_history``.
    """

    def __init__(self, session: str, history: int, max_payload: int = MAX_PAYLOAD) -> None:
        if history <= 0:
            raise ValueError("history must be positive")
        self.session = session
        # a ring indexed by sequence number: O(1) to append and to look up (a deque is O(n) to index, which
        # made answering from a long history slower than the feed it serves)
        self._ring: list[bytes] = [b""] * history
        self._held = 0  # messages in the ring
        self.capacity = history
        self.next_seq = 1  # sequence number of the next message appended
        self.max_payload = max_payload
        self.transport: asyncio.DatagramTransport | None = None
        self.counters = {"requests": 0, "answered": 0, "messages_resent": 0, "out_of_history": 0,
                         "bad_requests": 0}

    def append(self, message: bytes) -> None:
        self._ring[self.next_seq % self.capacity] = message
        self.next_seq += 1
        if self._held < self.capacity:
            self._held += 1

    @property
    def first_seq(self) -> int:
        return self.next_seq - self._held

    def message(self, seq: int) -> bytes:
        """Message ``seq`` as re-sent (``first_seq <= seq < next_seq``)."""
        return self._ring[seq % self.capacity]

    def answer(self, request: bytes) -> list[bytes]:
        """The MoldUDP64 packets that answer a request datagram (none for a bad or unanswerable one, counted)."""
        self.counters["requests"] += 1
        try:
            session, seq, count = decode_request(request)
        except MoldError:
            self.counters["bad_requests"] += 1
            return []
        if session != self.session or count == 0 or seq >= self.next_seq:
            self.counters["bad_requests"] += 1
            return []
        if seq < self.first_seq:
            self.counters["out_of_history"] += 1
            return []
        end = min(seq + min(count, MAX_ANSWER), self.next_seq)
        builder = PacketBuilder(self.session, first_seq=seq, max_payload=self.max_payload)
        message = self.message
        packets = [p for s in range(seq, end) if (p := builder.add(message(s))) is not None]
        tail = builder.flush()
        if tail is not None:
            packets.append(tail)
        self.counters["answered"] += 1
        self.counters["messages_resent"] += end - seq
        return packets

    # ------------------------------------------------------------------ the asyncio adapter
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        packets = self.answer(data)
        if packets:
            assert self.transport is not None
            for packet in packets:
                self.transport.sendto(packet, addr)
