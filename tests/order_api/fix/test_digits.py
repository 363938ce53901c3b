"""Non-ASCII digits on the FIX wire: ``34=²`` used to raise ValueError inside the "never raises" codec and the
session (``str.isdigit("²")`` is true, ``int("²")`` is not), which stopped the reader's loop without a word."""

from __future__ import annotations

import asyncio

import pytest

from order_api.fix import (
    Closed,
    DecodeErrorKind,
    FixDecodeError,
    FixFieldError,
    FixMessage,
    FixParser,
    LoggedOn,
    NewOrder,
    checksum,
    parse_fix_qty,
)
from order_api.fix.session import FixSession, Role
from tests.conftest import eventually

from .test_connection import pair
from .test_session import logged_on


def framed(body: bytes) -> bytes:
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return b"%s%s10=%03d\x01" % (head, body, checksum(head + body))


def test_a_superscript_sequence_number_is_a_value_not_an_exception() -> None:
    msg = framed("35=0\x0149=MM1\x0156=TICKFAN\x0134=²\x0152=20240102-03:04:05.678\x01".encode("latin-1"))
    [item] = FixParser().feed(msg)
    assert isinstance(item, FixMessage) and item.get(34) == "²"
    # a malformed field beside it: the error value carries no sequence number rather than raising
    [bad] = FixParser().feed(framed("35=0\x0134=²\x01junk\x01".encode("latin-1")))
    assert isinstance(bad, FixDecodeError) and bad.kind is DecodeErrorKind.BAD_FIELD and bad.seq_num is None


def test_the_session_logs_out_on_a_superscript_sequence_number() -> None:
    init, acc = logged_on()
    data = framed("35=0\x0149=MM1\x0156=TICKFAN\x0134=²\x0152=20240102-03:04:05.678\x01".encode("latin-1"))
    events = init.receive_data(data, 1.0)
    assert [type(e) for e in events] == [Closed] and "MsgSeqNum" in events[0].reason  # type: ignore[union-attr]


def test_a_superscript_heartbeat_interval_refuses_the_logon() -> None:
    acc = FixSession(Role.ACCEPTOR, "MM1")
    acc.start(0.0)
    logon = framed("35=A\x0149=TF\x0156=MM1\x0134=1\x0152=20240102-03:04:05.678\x0198=0\x01108=³\x01141=Y\x01"
                   .encode("latin-1"))
    [closed] = acc.receive_data(logon, 0.0)
    assert isinstance(closed, Closed) and "HeartBtInt" in closed.reason


def test_a_huge_tag_number_is_a_bad_field() -> None:
    [bad] = FixParser().feed(framed(b"35=0\x01" + b"9" * 5000 + b"=1\x01"))
    assert isinstance(bad, FixDecodeError) and bad.kind is DecodeErrorKind.BAD_FIELD


@pytest.mark.parametrize("text", ["¹", "1²", "1.²", "+1", " 1", "1_0"])
def test_quantities_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fix_qty(text)
    msg = NewOrder("c1", "AAPL", "buy", 5).to_fix()
    hostile = FixMessage([(t, text if t == 38 else v) for t, v in msg.fields])
    with pytest.raises(FixFieldError):
        NewOrder.from_fix(hostile)


@pytest.mark.anyio
async def test_an_error_inside_the_read_loop_ends_the_session_loudly() -> None:
    # Before: any exception but OSError/RuntimeError killed the read loop silently, the session stayed "active"
    # and nothing more was read until the heartbeat timers gave up. Now: counted, logged, Logout, Closed.
    async with pair() as (init, ini_rec, acc, acc_rec):
        async def broken(message: FixMessage) -> None:
            raise KeyError("a bug in a handler")
        acc_rec.on_message = broken  # type: ignore[method-assign]
        init.send(NewOrder("boom", "AAPL", "buy", 1).to_fix())
        await eventually(lambda: acc.session.closed, what="the acceptor ended its session")
        assert acc.counters["internal_errors"] == 1
        await eventually(lambda: ini_rec.of(Closed), what="the initiator was told (Logout)")
        assert "internal error" in ini_rec.of(Closed)[0].reason  # type: ignore[attr-defined]
        assert acc_rec.of(LoggedOn) and asyncio.get_running_loop().time() > 0
