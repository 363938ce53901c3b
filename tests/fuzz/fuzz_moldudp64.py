"""Fuzz target: MoldUDP64 datagrams into the codec and the feed session.

Contract: ``decode_packet`` returns blocks that lie inside the datagram or raises ``MoldError``; the session
takes any datagram without raising, stays in a state of its table, and a datagram it rejects changes
nothing but a counter. Run: ``python -m tests.fuzz.run --seconds 15 moldudp64``.
"""

from __future__ import annotations

from ingest import itch, moldudp64
from ingest.messages import OrderDelete
from ingest.moldudp64 import MoldError
from ingest.session import TRANSITIONS, FeedSession

SESSION = "TICKFAN001"
_FIRST = moldudp64.encode_packet(SESSION, 1, [itch.encode(OrderDelete(1, 0, 5, 1))])
SEEDS: list[bytes] = [
    moldudp64.encode_packet(SESSION, 2, [itch.encode(OrderDelete(1, 0, 5, i)) for i in range(2, 5)]),
    moldudp64.heartbeat(SESSION, 2),
    moldudp64.heartbeat(SESSION, (1 << 64) - 1),
    moldudp64.end_of_session(SESSION, 2),
    moldudp64.encode_packet(SESSION, 50, [b"S" + bytes(11), b"?"]),
    moldudp64.encode_request(SESSION, 1, 10),
]
REJECTED = ("malformed_packets", "unknown_session", "implausible_jump", "duplicate_packets")


def one_input(data: bytes) -> None:
    try:
        packet = moldudp64.decode_packet(data)
    except MoldError:
        pass
    else:
        for off, n in packet.blocks:
            assert moldudp64.HEADER_SIZE + 2 <= off and off + n <= len(data)
    session = FeedSession(SESSION, adopt_session=False)
    session.on_packet(_FIRST, 0.0)
    before = (session.next_seq, session.state, session.held_messages)
    counters = dict(session.counters)
    session.on_packet(data, 0.0)
    session.poll(5.0)
    assert session.state in TRANSITIONS
    if any(session.counters[k] > counters[k] for k in REJECTED):
        assert (session.next_seq, session.held_messages) == before[::2], "a rejected datagram changed the session"


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
