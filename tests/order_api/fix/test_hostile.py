"""Hostile input for the FIX codec, typed messages and session, as properties (not only valid values).

Alphabets: arbitrary bytes, valid messages mutated (bytes flipped, cut, inserted), wrong BodyLength and CheckSum,
non-ASCII digits (latin-1's superscripts), SOH inside values, huge tag numbers. The oracle is the package's
contract: nothing raises but the documented error (``FixFieldError`` from a typed conversion, ``FixEncodeError``
when *we* ask to encode what FIX cannot carry); garbage before a valid message does not lose that message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_api.fix import (
    DecodeErrorKind,
    FixDecodeError,
    FixEncodeError,
    FixMessage,
    FixParser,
    NewOrder,
    encode,
)
from tests.fuzz.fuzz_fix import SEEDS, check_messages, check_parser, check_session, one_input

HOSTILE_TEXT = st.text(alphabet=st.sampled_from("0123456789.-+ =¹²³½\x00\x7f\xff\xa0AZaz|\x01"), min_size=1,
                       max_size=12)


def valid_messages() -> st.SearchStrategy[bytes]:
    order = st.builds(NewOrder, cl_ord_id=st.text("abc123-:", min_size=1, max_size=20), symbol=st.sampled_from(
        ["AAPL", "MSFT", "BRK.B"]), side=st.sampled_from(["buy", "sell"]), qty=st.integers(1, 10**9),
        ord_type=st.just("market"))
    return order.map(lambda o: encode(FixMessage([*o.to_fix(0.0).fields[:1], (49, "TF-h"), (56, "MM1"), (34, "2"),
                                                  (52, "20240102-03:04:05.678"), *o.to_fix(0.0).fields[1:]])))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS) | valid_messages()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "digit"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=8))
        else:  # a non-ASCII digit (latin-1 superscripts) where a digit may be expected
            data[at:at] = draw(st.sampled_from([b"\xb9", b"\xb2", b"\xb3"]))
    return bytes(data)


@settings(max_examples=200)
@given(st.binary(max_size=600) | mutated(), st.integers(1, 64))
def test_arbitrary_and_mutated_bytes_never_raise(data: bytes, chunk: int) -> None:
    items = check_parser(data, chunk)
    check_messages(items)
    check_session(data, chunk)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_the_fuzz_targets_own_oracle_holds(data: bytes) -> None:
    one_input(data)


@settings(max_examples=200)
@given(valid_messages(), st.binary(max_size=200).filter(lambda b: b"8=" not in b))
def test_garbage_before_a_message_does_not_lose_it(message: bytes, garbage: bytes) -> None:
    items = FixParser().feed(garbage + message)
    assert isinstance(items[-1], FixMessage) and encode(items[-1]) == message


@settings(max_examples=200)
@given(valid_messages(), st.integers(-5, 5).filter(bool), st.integers(1, 255))
def test_a_wrong_body_length_or_checksum_is_a_decode_error(message: bytes, delta: int, bump: int) -> None:
    head, _, rest = message.partition(b"\x019=")
    length, _, tail = rest.partition(b"\x01")
    wrong_length = head + b"\x019=" + str(max(int(length) + delta, 0)).encode() + b"\x01" + tail
    out = FixParser().feed(wrong_length + message)
    assert isinstance(out[0], FixDecodeError) and out[0].kind is not DecodeErrorKind.MISSING_MSG_TYPE
    assert isinstance(out[-1], FixMessage)  # and the next message still comes through
    cs = int(message[-4:-1])
    wrong_sum = message[:-4] + b"%03d\x01" % ((cs + bump) % 256)
    [bad] = FixParser().feed(wrong_sum)
    assert isinstance(bad, FixDecodeError) and bad.kind is DecodeErrorKind.CHECKSUM


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from([11, 14, 31, 32, 34, 38, 39, 44, 54, 55, 150, 151, 6, 17, 37]), HOSTILE_TEXT,
                       min_size=1), st.sampled_from(["D", "8", "F", "H", "9", "3", "0"]))
def test_hostile_values_in_any_field(values: dict[int, str], msg_type: str) -> None:
    fields = [(35, msg_type), *((t, v) for t, v in values.items())]
    if any("\x01" in v for _, v in fields):
        with pytest.raises(FixEncodeError):  # SOH in a value: refused when we build it, never framed
            encode(FixMessage(fields))
        return
    wire = encode(FixMessage(fields))
    check_messages(check_parser(wire, 7))
    check_session(wire, 7)


@settings(max_examples=100)
@given(st.integers(10, 5000))
def test_huge_tag_numbers_are_bad_fields(digits: int) -> None:
    body = b"35=0\x01" + b"7" * digits + b"=1\x01"
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    wire = head + body + b"10=%03d\x01" % (sum(head + body) % 256)
    [item] = FixParser().feed(wire)
    assert isinstance(item, FixDecodeError)
    assert item.kind in (DecodeErrorKind.BAD_FIELD, DecodeErrorKind.TOO_LONG, DecodeErrorKind.BODY_LENGTH)
