"""FIX 4.4 codec: byte-exact framing, round trips, chunked streams, malformed input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_api.fix import (
    CancelReject,
    CancelRequest,
    CxlRejReason,
    DecodeErrorKind,
    ExecType,
    ExecutionReport,
    FixDecodeError,
    FixEncodeError,
    FixFieldError,
    FixMessage,
    FixParser,
    NewOrder,
    OrdStatus,
    SessionReject,
    SessionRejectReason,
    StatusRequest,
    checksum,
    decode,
    encode,
    heartbeat,
    logon,
    logout,
    parse_fix_qty,
    test_request,
    utc_timestamp,
)
from vocab.quantities import QTY_SCALE as S

SOH = b"\x01"
STAMP = "20240102-03:04:05.678"  # utc_timestamp(1704164645.678)

# Hand-computed: the body "35=0|49=TICKFAN|56=MM1|34=2|52=20240102-03:04:05.678|" is 5 + 11 + 7 + 5 + 25 = 53
# bytes; the sum of every byte from "8=" through the body's last SOH is 3484, and 3484 - 13 * 256 = 156.
HEARTBEAT_WIRE = (b"8=FIX.4.4\x019=53\x0135=0\x0149=TICKFAN\x0156=MM1\x0134=2\x01"
                  b"52=20240102-03:04:05.678\x0110=156\x01")
HEARTBEAT_MSG = FixMessage([(35, "0"), (49, "TICKFAN"), (56, "MM1"), (34, "2"), (52, STAMP)])
# body 5 + 10 + 8 + 5 + 7 + 5 + 11 + 5 + 25 = 81 bytes; checksum 098
NOS_WIRE = (b"8=FIX.4.4\x019=81\x0135=D\x0111=ORD-1\x0155=AAPL\x0154=1\x0138=100\x0140=2\x0144=189.2500\x01"
            b"59=0\x0160=20240102-03:04:05.678\x0110=098\x01")

# An extended-hours order: the same shape plus the trading-session group (FIX 4.4 TrdgSesGrp) after 59; the body is
# 81 - 1 (38=10 for 38=100) + 6 (386=3) + 8 (336=PRE) + 8 (336=REG) + 9 (336=POST) = 111 bytes; checksum 255
EXT_WIRE = (b"8=FIX.4.4\x019=111\x0135=D\x0111=ORD-2\x0155=AAPL\x0154=1\x0138=10\x0140=2\x0144=180.2500\x01"
            b"59=0\x01386=3\x01336=PRE\x01336=REG\x01336=POST\x0160=20240102-03:04:05.678\x0110=255\x01")


def wire(text: str) -> bytes:
    return text.replace("|", "\x01").encode("latin-1")


def test_known_message_is_byte_exact() -> None:
    assert encode(HEARTBEAT_MSG) == HEARTBEAT_WIRE
    assert decode(HEARTBEAT_WIRE) == HEARTBEAT_MSG
    assert sum(HEARTBEAT_WIRE[:HEARTBEAT_WIRE.index(b"10=")]) == 3484


def test_checksum_of_a_published_example() -> None:
    # The classic FIX 4.2 Logon example (CheckSum 062), byte for byte up to the CheckSum field.
    data = wire("8=FIX.4.2|9=65|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|")
    assert checksum(data) == 62


def test_new_order_single_is_byte_exact() -> None:
    order = NewOrder("ORD-1", "AAPL", "buy", 100 * S, "limit", 1892500, "day")
    assert encode(order.to_fix(transact_time=1704164645.678)) == NOS_WIRE
    assert NewOrder.from_fix(decode(NOS_WIRE)) == order


def test_an_extended_hours_order_is_byte_exact_and_a_regular_one_carries_no_group() -> None:
    order = NewOrder("ORD-2", "AAPL", "buy", 10 * S, "limit", 1802500, "day", extended_hours=True)
    assert encode(order.to_fix(transact_time=1704164645.678)) == EXT_WIRE
    assert len(EXT_WIRE[EXT_WIRE.index(b"35="):EXT_WIRE.index(b"10=")]) == 111
    assert sum(EXT_WIRE[:EXT_WIRE.index(b"10=")]) % 256 == 255
    assert NewOrder.from_fix(decode(EXT_WIRE)) == order
    assert b"336=" not in NOS_WIRE and b"386=" not in NOS_WIRE  # regular hours: the bytes of before
    assert order.terms() != dataclasses.replace(order, extended_hours=False).terms()


@pytest.mark.parametrize(("group", "extended"), [
    ("", False), ("|386=1|336=REG", False), ("|386=3|336=POST|336=PRE|336=REG", True),
])
def test_the_trading_session_group_read(group: str, extended: bool) -> None:
    msg = FixMessage((int(t), v) for t, _, v in (f.partition("=") for f in
                                                 f"35=D|11=C1|55=AAPL|54=1|38=10|40=2|44=1{group}|60=x".split("|")))
    assert NewOrder.from_fix(msg).extended_hours is extended


def test_utc_timestamp() -> None:
    assert utc_timestamp(1704164645.678) == STAMP
    assert utc_timestamp(0) == "19700101-00:00:00.000"


def test_session_messages() -> None:
    assert logon(30).fields == ((35, "A"), (98, "0"), (108, "30"), (141, "Y"))
    assert heartbeat().fields == ((35, "0"),)
    assert heartbeat("T1").fields == ((35, "0"), (112, "T1"))
    assert test_request("T1").fields == ((35, "1"), (112, "T1"))
    assert logout("bye").fields == ((35, "5"), (58, "bye"))
    assert logout().fields == ((35, "5"),)


def test_message_access() -> None:
    m = decode(NOS_WIRE)
    assert m.msg_type == "D" and m[55] == "AAPL" and m.get(44) == "189.2500" and m.get(99) is None
    assert 11 in m and 99 not in m
    assert "35=D|11=ORD-1" in repr(m)
    with pytest.raises(KeyError):
        m[99]


# ------------------------------------------------------------------------------- prices and quantities


@pytest.mark.parametrize("text,value", [("100", 100 * S), ("100.0", 100 * S), ("100.000", 100 * S), ("0", 0),
                                         ("0.5", S // 2), ("1.000001", S + 1), ("1.00000100", S + 1)])
def test_parse_qty(text: str, value: int) -> None:
    assert parse_fix_qty(text) == value


@pytest.mark.parametrize("text", ["", "1.0000001", "-1", "1e3", "abc", ".", "1.5.0"])
def test_parse_qty_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fix_qty(text)


# ------------------------------------------------------------------------------- property tests

_value_chars = st.characters(min_codepoint=0x20, max_codepoint=0xFF)
values = st.text(_value_chars, min_size=1, max_size=20)
tags = st.integers(min_value=11, max_value=9999)  # anything but 8, 9, 10 (and 35 stays first)
messages = st.builds(
    lambda mt, fields: FixMessage([(35, mt), *fields]),
    st.text(st.sampled_from("0123456789ABCDEFGHIJ"), min_size=1, max_size=2),
    st.lists(st.tuples(tags, values), max_size=12),
)


@given(messages)
def test_parse_encode_round_trip(msg: FixMessage) -> None:
    assert decode(encode(msg)) == msg


@settings(max_examples=200)
@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_any_chunking_of_a_stream(msgs: list[FixMessage], data: st.DataObject) -> None:
    stream = b"".join(encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20)))
    parser = FixParser()
    out: list[FixMessage | FixDecodeError] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out += parser.feed(stream[prev:cut])
        prev = cut
    assert out == msgs
    assert parser.buffered == 0


sides = st.sampled_from(["buy", "sell"])
ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=36)
symbols = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=8)
qtys = st.integers(min_value=1, max_value=10**9)
prices = st.integers(min_value=1, max_value=10**12)
new_orders = st.one_of(
    st.builds(NewOrder, ids, symbols, sides, qtys, st.just("market"), st.none(), st.sampled_from(["day", "ioc"]),
              st.booleans()),
    st.builds(NewOrder, ids, symbols, sides, qtys, st.just("limit"), prices, st.sampled_from(["day", "ioc"]),
              st.booleans()),
)
reports = st.builds(
    ExecutionReport, ids, st.one_of(st.none(), ids), ids, ids, st.sampled_from(list(ExecType)),
    st.sampled_from(list(OrdStatus)), symbols, sides, st.integers(0, 10**9), st.integers(0, 10**12),
    st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**12),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40), st.booleans(),
)


@given(new_orders)
def test_new_order_round_trip(order: NewOrder) -> None:
    assert NewOrder.from_fix(decode(encode(order.to_fix(transact_time=0)))) == order


@given(st.builds(CancelRequest, ids, ids, symbols, sides, qtys))
def test_cancel_request_round_trip(req: CancelRequest) -> None:
    assert CancelRequest.from_fix(decode(encode(req.to_fix(transact_time=0)))) == req


@given(st.builds(StatusRequest, ids, symbols, sides))
def test_status_request_round_trip(req: StatusRequest) -> None:
    assert StatusRequest.from_fix(decode(encode(req.to_fix()))) == req


@given(reports)
def test_execution_report_round_trip(report: ExecutionReport) -> None:
    assert ExecutionReport.from_fix(decode(encode(report.to_fix()))) == report


@given(st.builds(CancelReject, ids, ids, ids, st.sampled_from(list(OrdStatus)), st.sampled_from(list(CxlRejReason)),
                 st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)))
def test_cancel_reject_round_trip(rej: CancelReject) -> None:
    assert CancelReject.from_fix(decode(encode(rej.to_fix()))) == rej


def test_session_reject_round_trip() -> None:
    rej = SessionReject(7, SessionRejectReason.REQUIRED_TAG_MISSING, "required tag 55 missing", 55, "D")
    assert SessionReject.from_fix(decode(encode(rej.to_fix()))) == rej


def test_execution_report_wire_tags() -> None:
    er = ExecutionReport("C1", None, "O1", "X1", ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, "AAPL", "sell",
                         100, 1892500, 50, 100, 1892500, "", poss_resend=True)
    m = er.to_fix()
    assert [t for t, _ in m.fields] == [35, 97, 37, 17, 150, 39, 11, 55, 54, 32, 31, 151, 14, 6]
    assert (m[150], m[39], m[54], m[31], m[6], m[97]) == ("F", "1", "2", "189.2500", "189.2500", "Y")


# ------------------------------------------------------------------------------- conversion errors


def test_to_fix_refuses_inconsistent_orders() -> None:
    with pytest.raises(FixEncodeError):
        NewOrder("C1", "AAPL", "buy", 10, "limit", None).to_fix()
    with pytest.raises(FixEncodeError):
        NewOrder("C1", "AAPL", "buy", 10, "market", 100).to_fix()
    with pytest.raises(FixEncodeError):
        NewOrder("C1", "AAPL", "buy", 0).to_fix()


@pytest.mark.parametrize("fields", [
    [(35, "A"), (8, "x")],
    [(35, "A"), (58, "")],
    [(35, "A"), (58, "a\x01b")],
    [(49, "x")],
    [(35, "A"), (58, "\u20ac")],
])
def test_encode_refuses_what_fix_cannot_carry(fields: list[tuple[int, str]]) -> None:
    with pytest.raises(FixEncodeError):
        encode(FixMessage(fields))


@pytest.mark.parametrize("text,tag,reason", [
    ("35=D|11=C1|54=1|38=10|40=1", 55, SessionRejectReason.REQUIRED_TAG_MISSING),
    ("35=D|11=C1|55=AAPL|54=7|38=10|40=1", 54, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=D|11=C1|55=AAPL|54=1|38=0|40=1", 38, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=D|11=C1|55=AAPL|54=1|38=1.0000001|40=1", 38, SessionRejectReason.INCORRECT_DATA_FORMAT),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=2", 44, SessionRejectReason.REQUIRED_TAG_MISSING),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=2|44=1.23456", 44, SessionRejectReason.INCORRECT_DATA_FORMAT),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=2|44=-1", 44, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|59=6", 59, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=8|11=C1", 35, SessionRejectReason.INVALID_MSG_TYPE),
    # the trading-session group (FIX 336 in 386): a count that is not the 336s right after it, a 336 outside a
    # group, sessions that are neither REG alone nor PRE+REG+POST
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=2|336=PRE|336=REG|336=POST", 386,
     SessionRejectReason.INCORRECT_NUM_IN_GROUP),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=3|336=PRE|59=0|336=REG|336=POST", 386,
     SessionRejectReason.INCORRECT_NUM_IN_GROUP),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=0", 386, SessionRejectReason.INCORRECT_NUM_IN_GROUP),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=x|336=REG", 386, SessionRejectReason.INCORRECT_NUM_IN_GROUP),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|336=PRE", 386, SessionRejectReason.REQUIRED_TAG_MISSING),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=1|336=PRE", 336, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=2|336=REG|336=POST", 336, SessionRejectReason.VALUE_OUT_OF_RANGE),
    ("35=D|11=C1|55=AAPL|54=1|38=10|40=1|386=3|336=REG|336=REG|336=REG", 336, SessionRejectReason.VALUE_OUT_OF_RANGE),
])
def test_from_fix_names_the_bad_tag(text: str, tag: int, reason: SessionRejectReason) -> None:
    msg = FixMessage((int(t), v) for t, _, v in (f.partition("=") for f in text.split("|")))
    with pytest.raises(FixFieldError) as e:
        NewOrder.from_fix(msg)
    assert (e.value.tag, e.value.reason) == (tag, reason)


def test_market_order_ignores_tif_default() -> None:
    msg = FixMessage([(35, "D"), (11, "C1"), (55, "AAPL"), (54, "2"), (38, "5"), (40, "1")])
    assert NewOrder.from_fix(msg) == NewOrder("C1", "AAPL", "sell", 5 * S, "market", None, "day")


# ------------------------------------------------------------------------------- malformed streams


def kinds(items: list[FixMessage | FixDecodeError]) -> list[str]:
    return ["msg" if isinstance(i, FixMessage) else i.kind.value for i in items]


def test_bad_checksum_is_reported_and_the_next_message_read() -> None:
    bad = HEARTBEAT_WIRE.replace(b"10=156", b"10=157")
    out = FixParser().feed(bad + NOS_WIRE)
    assert kinds(out) == ["checksum", "msg"]
    assert isinstance(out[0], FixDecodeError) and "157" in out[0].detail and out[0].skipped == len(bad)


@pytest.mark.parametrize("bad,kind", [
    (HEARTBEAT_WIRE.replace(b"9=53", b"9=52"), "body_length"),      # says shorter than it is
    (HEARTBEAT_WIRE.replace(b"9=53", b"9=54"), "body_length"),      # says longer than it is
    (HEARTBEAT_WIRE.replace(b"9=53", b"9=5x"), "body_length"),      # not a number
    (HEARTBEAT_WIRE.replace(b"9=53\x01", b""), "body_length"),      # missing 9
    (HEARTBEAT_WIRE.replace(b"FIX.4.4", b"FIX.4.2"), "begin_string"),
    (HEARTBEAT_WIRE.replace(b"10=156", b"10=1x6"), "checksum"),     # malformed CheckSum field
    (HEARTBEAT_WIRE[10:], "garbage"),                              # missing 8
    (b"hello world", "garbage"),
    (HEARTBEAT_WIRE[:40], "truncated"),                            # cut short, the next message begins
])
def test_malformed_then_a_good_message(bad: bytes, kind: str) -> None:
    out = FixParser().feed(bad + NOS_WIRE)
    assert kind in kinds(out)
    assert kinds(out)[-1] == "msg" and out[-1] == decode(NOS_WIRE)
    assert all(k != "msg" for k in kinds(out)[:-1])


def test_missing_msg_type_is_framed_error_with_its_seq() -> None:
    msg = encode(FixMessage([(35, "0"), (49, "A"), (56, "B"), (34, "7")]))
    # swap 35 out of first place and fix up the frame so only the content is wrong
    body = b"49=A\x0135=0\x0156=B\x0134=7\x01"
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    raw = head + body + b"10=%03d\x01" % checksum(head + body)
    assert len(raw) == len(msg)
    (err,) = FixParser().feed(raw)
    assert isinstance(err, FixDecodeError) and err.kind is DecodeErrorKind.MISSING_MSG_TYPE
    assert err.seq_num == 7 and not err.kind.framing


def test_bad_field_keeps_seq_and_msg_type() -> None:
    body = b"35=D\x0149=A\x0156=B\x0134=9\x01x55=AAPL\x01"
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    (err,) = FixParser().feed(head + body + b"10=%03d\x01" % checksum(head + body))
    assert isinstance(err, FixDecodeError) and err.kind is DecodeErrorKind.BAD_FIELD
    assert (err.seq_num, err.msg_type) == (9, "D")


def test_too_long_message_is_dropped() -> None:
    parser = FixParser(max_message_size=200)
    big = encode(FixMessage([(35, "0"), (58, "x" * 300)]))
    assert kinds(parser.feed(big + NOS_WIRE)) == ["too_long", "msg"]
    # a message with no end in sight is dropped too, and the buffer stays bounded
    parser = FixParser(max_message_size=200)
    out = parser.feed(b"8=FIX.4.4\x019=150\x0135=0\x01" + b"58=" + b"y" * 400)
    assert kinds(out) == ["too_long"] and parser.buffered <= 200


def test_partial_prefixes_wait_for_more() -> None:
    parser = FixParser()
    for i in range(1, len(HEARTBEAT_WIRE)):
        assert FixParser().feed(HEARTBEAT_WIRE[:i]) == []
    assert parser.feed(HEARTBEAT_WIRE) == [HEARTBEAT_MSG]


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_a_good_message_is_found_after(garbage: bytes) -> None:
    parser = FixParser()
    out = parser.feed(garbage)
    assert all(isinstance(i, FixMessage | FixDecodeError) for i in out)
    out = parser.feed(NOS_WIRE + NOS_WIRE)
    assert decode(NOS_WIRE) in out


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=5), st.integers(min_value=0, max_value=len(NOS_WIRE) - 1))
def test_corrupting_one_spot_is_reported_and_the_next_message_read(noise: bytes, pos: int) -> None:
    corrupted = NOS_WIRE[:pos] + noise + NOS_WIRE[pos + len(noise):]
    out = FixParser().feed(corrupted + HEARTBEAT_WIRE)
    # whatever was damaged, the next message is read
    assert out and out[-1] == HEARTBEAT_MSG
    # and damage the CheckSum can see is reported, never read as a message (a change whose byte sum is a
    # multiple of 256 is invisible to FIX's checksum: that weakness is the protocol's)
    if corrupted[-7:] == NOS_WIRE[-7:] and (sum(corrupted[:-7]) - sum(NOS_WIRE[:-7])) % 256:
        assert [type(i) for i in out] == [FixDecodeError] * (len(out) - 1) + [FixMessage]
