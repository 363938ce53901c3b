"""The rewinder: re-sends from a bounded history, answers bad requests with silence and counts them."""

from __future__ import annotations

import asyncio
import socket

from ingest import moldudp64
from ingest.moldudp64 import encode_request
from tests.conftest import eventually
from venue.rewinder import Rewinder


def messages(n: int) -> list[bytes]:
    return [b"X" + i.to_bytes(4, "big") for i in range(1, n + 1)]


def unpacked(packets: list[bytes]) -> list[tuple[int, bytes]]:
    """(sequence, message) for every message of ``packets``."""
    out = []
    for p in packets:
        packet = moldudp64.decode_packet(p)
        assert packet.session == "S1"
        out += [(packet.seq + i, packet.message(i)) for i in range(packet.message_count)]
    return out


def test_answers_from_history_in_packets_of_at_most_max_payload() -> None:
    rw = Rewinder("S1", history=100, max_payload=60)
    for m in messages(30):
        rw.append(m)
    packets = rw.answer(encode_request("S1", 5, 10))
    assert all(len(p) <= 60 for p in packets) and len(packets) > 1
    assert unpacked(packets) == [(s, messages(30)[s - 1]) for s in range(5, 15)]
    # asking past the end gives what there is
    assert [s for s, _ in unpacked(rw.answer(encode_request("S1", 28, 10)))] == [28, 29, 30]
    assert rw.counters["answered"] == 2 and rw.counters["messages_resent"] == 13


def test_out_of_history_and_bad_requests_get_no_answer_and_a_count() -> None:
    rw = Rewinder("S1", history=10)
    for m in messages(25):
        rw.append(m)
    assert rw.first_seq == 16 and rw.next_seq == 26
    assert rw.answer(encode_request("S1", 15, 2)) == []  # left the history
    assert rw.answer(encode_request("OTHER", 20, 2)) == []  # another session
    assert rw.answer(encode_request("S1", 26, 1)) == []  # not sent yet
    assert rw.answer(encode_request("S1", 20, 0)) == []  # nothing asked
    assert rw.answer(b"garbage") == []
    assert rw.counters == {"requests": 5, "answered": 0, "messages_resent": 0, "out_of_history": 1,
                           "bad_requests": 4}


def test_answers_over_udp_to_the_requester() -> None:
    async def scenario() -> None:
        rw = Rewinder("S1", history=100)
        for m in messages(20):
            rw.append(m)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: rw, local_addr=("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        got: list[bytes] = []

        def received() -> bool:
            try:
                got.append(client.recv(65536))
            except BlockingIOError:
                pass
            return len(unpacked(got)) == 3

        try:
            client.sendto(encode_request("S1", 2, 3), transport.get_extra_info("sockname"))
            await eventually(received, what="the answer", state=lambda: rw.counters)
        finally:
            client.close()
            transport.close()
        assert unpacked(got) == [(2, messages(20)[1]), (3, messages(20)[2]), (4, messages(20)[3])]

    asyncio.run(scenario())
