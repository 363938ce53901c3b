"""The fast JSON printer for flat messages prints exactly what protobuf's canonical printer prints."""

from __future__ import annotations

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from fanout.encode import to_json
from tickfan_proto import stream_pb2 as pb

i64 = st.integers(-(2**63), 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
# tickers are ASCII, but quotes, backslashes and non-ASCII must print the same
text = st.one_of(st.text(max_size=8), st.text("ABCZ019.", max_size=8))


@settings(max_examples=60, deadline=None)
@given(text, u64, i64, i64, i64, i64, i64, i64, i64, i64, st.booleans(), st.booleans())
def test_quote_json_is_canonical(symbol: str, seq: int, bp: int, bs: int, ap: int, asz: int, lp: int, ls: int,
                                 vol: int, t: int, halted: bool, stale: bool) -> None:
    q = pb.Quote(symbol=symbol, seq=seq, bid_price=bp, bid_size=bs, ask_price=ap, ask_size=asz, last_price=lp,
                 last_size=ls, volume=vol, exchange_time_ns=t, halted=halted, stale=stale)
    assert to_json(q) == json_format.MessageToJson(q, indent=None)


@settings(max_examples=60, deadline=None)
@given(text, u64, i64, i64, i64, u64)
def test_trade_json_is_canonical(symbol: str, seq: int, price: int, size: int, t: int, match: int) -> None:
    m = pb.Trade(symbol=symbol, seq=seq, price=price, size=size, exchange_time_ns=t, match_number=match)
    assert to_json(m) == json_format.MessageToJson(m, indent=None)


def test_defaults_are_left_out_and_other_messages_use_protobufs_printer() -> None:
    assert to_json(pb.Quote()) == "{}"
    assert to_json(pb.Quote(symbol="AAPL", halted=True)) == '{"symbol": "AAPL", "halted": true}'
    pong = pb.ServerMessage(pong=pb.Pong(nonce=3))  # not flat: a oneof of messages
    assert to_json(pong) == json_format.MessageToJson(pong, indent=None)
