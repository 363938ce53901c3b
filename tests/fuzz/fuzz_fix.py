"""Fuzz target: the FIX 4.4 codec, typed messages and session (``order_api.fix``) on arbitrary bytes.

The contract (``order_api/fix/__init__.py``): nothing raises on what the network sends. The parser turns any bytes
into messages and decode errors whose skipped bytes account for the input; every application message either
converts or raises :class:`FixFieldError`; a logged-on session fed the same bytes either stays active with its
sequence numbers moved by exactly what it accepted, or ends once, with a Logout saying why. The first input byte
picks the chunk size, so splits across reads are fuzzed too.
"""

from __future__ import annotations

from order_api.fix import (
    CancelReject,
    CancelRequest,
    Closed,
    ExecutionReport,
    FixDecodeError,
    FixFieldError,
    FixMessage,
    FixParser,
    FixSession,
    LoggedOn,
    NewOrder,
    Role,
    StatusRequest,
    encode,
    logon,
    parse_app,
)
from order_api.fix.codec import MAX_MESSAGE_SIZE

ALL_APP = (NewOrder, CancelRequest, StatusRequest, ExecutionReport, CancelReject)
T0 = 1704164645.678


def _frame(fields: list[tuple[int, str]]) -> bytes:
    return encode(FixMessage(fields))


def _hdr(msg_type: str, seq: int, sender: str = "TF-fuzz", target: str = "MM1") -> list[tuple[int, str]]:
    return [(35, msg_type), (49, sender), (56, target), (34, str(seq)), (52, "20240102-03:04:05.678")]


SEEDS: list[bytes] = [
    _frame(_hdr("D", 2) + [(11, "c1"), (55, "AAPL"), (54, "1"), (38, "10"), (40, "2"), (44, "189.25"), (59, "0")]),
    _frame(_hdr("8", 2, "MM1", "TF-fuzz") + [(37, "O-1"), (17, "X-1"), (150, "F"), (39, "2"), (11, "c1"),
                                            (55, "AAPL"), (54, "1"), (32, "10"), (31, "189.25"), (151, "0"),
                                            (14, "10"), (6, "189.25")]),
    _frame(_hdr("0", 2)) + _frame(_hdr("1", 3) + [(112, "T1")]),
    _frame(_hdr("0", 2)[:3] + [(34, "²"), (52, "20240102-03:04:05.678")]),  # a non-ASCII digit
    b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01",
    b"garbage\x018=FIX.4.2\x019=12\x01" + b"9" * 40 + b"=1\x01",
    _frame(_hdr("F", 2) + [(41, "c1"), (11, "c1:c2"), (55, "AAPL"), (54, "1"), (38, "1.00")]),
    _frame(_hdr("5", 2) + [(58, "bye")]),
]


def logged_on_acceptor() -> FixSession:
    """An acceptor after a valid Logon from TF-fuzz (sequence 1), ready for message 2."""
    acc = FixSession(Role.ACCEPTOR, "MM1", clock=lambda: T0)
    acc.start(0.0)
    events = acc.receive_data(encode(FixMessage([*logon(30).fields[:1], (49, "TF-fuzz"), (56, "MM1"), (34, "1"),
                                                 (52, "20240102-03:04:05.678"), *logon(30).fields[1:]])), 0.0)
    assert [type(e) for e in events] == [LoggedOn], events
    acc.data_to_send()
    return acc


def check_parser(data: bytes, chunk: int) -> list[FixMessage | FixDecodeError]:
    parser = FixParser()
    out: list[FixMessage | FixDecodeError] = []
    for i in range(0, len(data), chunk):
        out += parser.feed(data[i:i + chunk])
        assert parser.buffered <= MAX_MESSAGE_SIZE + chunk, parser.buffered
    for item in out:
        assert isinstance(item, FixMessage | FixDecodeError)
        if isinstance(item, FixDecodeError):
            assert item.skipped >= 0
    assert sum(item.skipped for item in out if isinstance(item, FixDecodeError)) <= len(data)
    return out


def check_messages(items: list[FixMessage | FixDecodeError]) -> None:
    for item in items:
        if isinstance(item, FixMessage):
            try:
                parse_app(item, ALL_APP)
            except FixFieldError:
                pass


def check_session(data: bytes, chunk: int) -> None:
    acc = logged_on_acceptor()
    seq_before = acc.next_in_seq
    closed = 0
    for i in range(0, len(data), chunk):
        if acc.closed:
            break
        events = acc.receive_data(data[i:i + chunk], 1.0)
        closed += sum(isinstance(e, Closed) for e in events)
        assert all(not isinstance(e, LoggedOn) for e in events)
    if acc.closed:
        assert closed == 1 and acc.close_reason
    else:
        assert acc.active and closed == 0 and acc.next_in_seq >= seq_before
    assert acc.next_out_seq == acc.counters["messages_out"] + 1  # every message sent took one number
    acc.tick(100.0)  # timers on whatever state it is left in: never raise


def one_input(data: bytes) -> None:
    chunk = 1 + (data[0] if data else 0) % 64
    body = data[1:]
    items = check_parser(body, chunk)
    check_messages(items)
    whole = check_parser(body, max(len(body), 1))
    assert [i for i in whole if isinstance(i, FixMessage)] == [i for i in items if isinstance(i, FixMessage)] or \
        any(isinstance(i, FixDecodeError) for i in whole + items)
    check_session(body, chunk)


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
