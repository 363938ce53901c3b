"""Hostile input against the pure client protocol (issue 10, item 7): whatever a client sends, in whatever frames.

The oracle, per frame: ``ClientProtocol`` never raises; what it answers can be encoded in both wire formats;
a complete message is answered (a pong, a ``Subscribed`` ack, an error, or a close); anything that is not a
success is an ``Error``; the subscription changes only with an ack, and only to known symbols within the caps;
the user never changes. The alphabets are hostile on purpose: arbitrary bytes and text, NULs, unicode, symbols
that are nearly right, huge symbol lists, deeply nested JSON, fragments in any order.
"""

from __future__ import annotations

import json

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from fanout.protocol import ALL_CHANNELS, CHANNELS
from tickfan_proto import stream_pb2 as pb

from .hostile import Frame, check, fresh, whole

# symbols and channels a client might send: right, nearly right, and hostile
nearly = st.sampled_from(["AAPL", "aapl", " TSLA ", "MSFT", "MSFT\x00", "ＡＡＰＬ", "AAPL\u200b", "", " ", "\x00",
                          "ß", "İ", "orders", "quotes", "depth", "trades", "QUOTES", "\ud7ff", "🙂", "A" * 300])
symbol = st.one_of(nearly, st.text(max_size=12))
channel = st.one_of(st.sampled_from([*ALL_CHANNELS, "", "Quotes", "orders ", "\x00"]), st.text(max_size=8))
symbols = st.lists(nearly, max_size=8) | st.lists(symbol, max_size=40) | st.lists(nearly, min_size=500, max_size=3000)
channels = st.lists(st.sampled_from(CHANNELS), max_size=3) | st.lists(channel, max_size=6)


@st.composite
def client_messages(draw: st.DrawFn) -> pb.ClientMessage:
    kind = draw(st.sampled_from(["subscribe", "unsubscribe", "ping", "none"]))
    if kind == "subscribe":
        return pb.ClientMessage(subscribe=pb.Subscribe(symbols=draw(symbols), channels=draw(channels)))
    if kind == "unsubscribe":
        return pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=draw(symbols), channels=draw(channels)))
    if kind == "ping":
        return pb.ClientMessage(ping=pb.Ping(nonce=draw(st.integers(0, 2**64 - 1))))
    return pb.ClientMessage()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["subscribe", "unsubscribe", "ping", "symbols", "channels", "nonce", "x", ""]) | st.text(),
        inner, max_size=4),
    max_leaves=20)


@st.composite
def nested_json(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"subscribe":', "}"), ('{"a":[', "]}")]))
    return opener * depth + draw(st.sampled_from(["1", "", '"AAPL"', "null"])) + closer * draw(st.integers(0, depth))


messages = st.one_of(
    st.binary(max_size=300).map(whole),
    st.text(max_size=300).map(whole),
    client_messages().map(lambda m: whole(m.SerializeToString())),
    client_messages().map(lambda m: whole(json_format.MessageToJson(m, indent=None))),
    json_values.map(lambda v: whole(json.dumps(v))),
    nested_json().map(whole),
    st.binary(min_size=8193, max_size=9000).map(whole),  # over the size limit
)
fragments = st.builds(Frame, st.binary(max_size=40), st.booleans(), st.booleans(), st.booleans())
frames = st.one_of(messages, messages, fragments)


@settings(max_examples=200)
@given(message=messages, user=st.sampled_from([None, "alice"]))
def test_any_single_message_is_answered_and_changes_nothing_unless_acknowledged(message: Frame, user: str | None
                                                                                ) -> None:
    check(fresh(user), message, 0.0, user)


@settings(max_examples=50)
@given(sequence=st.lists(st.tuples(frames, st.floats(0, 0.5)), max_size=30), user=st.sampled_from([None, "alice"]))
def test_any_sequence_of_frames_keeps_the_contract(sequence: list[tuple[Frame, float]], user: str | None) -> None:
    p = fresh(user)
    now = 0.0
    for frame, dt in sequence:
        now += dt
        check(p, frame, now, user)


@settings(max_examples=100)
@given(names=st.lists(symbol, min_size=1, max_size=3000), json_mode=st.booleans())
def test_huge_and_hostile_symbol_lists_never_subscribe_anything_unknown(names: list[str], json_mode: bool) -> None:
    p = fresh(None)
    message = pb.ClientMessage(subscribe=pb.Subscribe(symbols=names, channels=["quotes", "depth"]))
    frame = whole(json_format.MessageToJson(message, indent=None) if json_mode else message.SerializeToString())
    check(p, frame, 0.0, None)


def test_deep_nesting_is_a_bad_message_not_a_crash() -> None:
    for text in ("[" * 100_000, '{"subscribe":' * 3000 + "{}" + "}" * 3000, '{"ping":' * 20_000):
        p = fresh(None)
        p.max_message_bytes = 1 << 20
        reply = p.receive(text)
        assert [m.error.code for m in reply.messages] == ["bad_message"]
