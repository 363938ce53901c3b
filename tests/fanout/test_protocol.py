"""The per-connection protocol state machine, every path."""

from __future__ import annotations

import json

from fanout.config import FanoutConfig
from fanout.protocol import ClientProtocol
from tickfan_proto import stream_pb2 as pb

LOCATES = {"AAPL": 1, "TSLA": 2, "MSFT": 3}


def proto(**settings: int) -> ClientProtocol:
    p = ClientProtocol(LOCATES.get, FanoutConfig(**settings))  # type: ignore[arg-type]
    p.open()
    return p


def sub(*symbols: str, channels: tuple[str, ...] = ()) -> bytes:
    return bytes(pb.ClientMessage(subscribe=pb.Subscribe(symbols=symbols, channels=channels)).SerializeToString())


def kinds(reply: object) -> list[str]:
    return [m.WhichOneof("kind") for m in reply.messages]  # type: ignore[attr-defined]


def test_subscribe_defaults_to_quotes_and_acknowledges() -> None:
    p = proto()
    r = p.receive(sub("aapl", "TSLA", "AAPL"))
    assert r.subscribed == {"quotes": [1, 2]} and kinds(r) == ["subscribed"]
    assert list(r.messages[0].subscribed.symbols) == ["AAPL", "TSLA"]
    assert p.receive(sub("AAPL")).subscribed == {}  # already subscribed: nothing new


def test_unknown_symbols_are_named_and_known_ones_still_apply() -> None:
    r = proto().receive(sub("AAPL", "NOPE"))
    assert kinds(r) == ["error", "subscribed"]
    assert r.messages[0].error.code == "unknown_symbol" and list(r.messages[0].error.symbols) == ["NOPE"]
    assert r.subscribed == {"quotes": [1]}


def test_channels() -> None:
    p = proto()
    assert p.receive(sub("AAPL", channels=("trades", "quotes"))).subscribed == {"trades": [1], "quotes": [1]}
    r = p.receive(sub("AAPL", channels=("depth-of-nonsense",)))
    assert r.messages[0].error.code == "unknown_channel" and r.subscribed == {}


def test_unsubscribe() -> None:
    p = proto()
    p.receive(sub("AAPL", "TSLA"))
    msg = pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=["TSLA", "MSFT"])).SerializeToString()
    r = p.receive(msg)
    assert r.unsubscribed == {"quotes": [2]} and list(r.messages[-1].subscribed.symbols) == ["AAPL"]


def test_ping_pong() -> None:
    r = proto().receive(pb.ClientMessage(ping=pb.Ping(nonce=42)).SerializeToString())
    assert kinds(r) == ["pong"] and r.messages[0].pong.nonce == 42


def test_garbage_and_empty_messages_get_bad_message() -> None:
    p = proto()
    for junk in (b"\xff\xff\xff", b"", "not json", json.dumps({"nosuchfield": 1})):
        r = p.receive(junk)
        assert kinds(r) == ["error"] and r.messages[0].error.code == "bad_message" and r.close is None


def test_json_mode_uses_canonical_mapping() -> None:
    p = proto()
    p.json_mode = True
    r = p.receive(json.dumps({"subscribe": {"symbols": ["AAPL"]}}))
    assert r.subscribed == {"quotes": [1]}


def test_too_large_closes_with_1009() -> None:
    p = proto(max_message_bytes=100)
    r = p.receive(b"\x00" * 101)
    assert r.messages[0].error.code == "too_large" and r.close is not None and r.close[0] == 1009
    assert p.receive(sub("AAPL")).messages == []  # closed: nothing more is processed


def test_too_many_symbols() -> None:
    p = proto(max_symbols=2)
    p.receive(sub("AAPL"))
    r = p.receive(sub("TSLA", "MSFT"))
    assert r.messages[0].error.code == "too_many_symbols" and r.subscribed == {}
    assert list(p.subscriptions["quotes"]) == ["AAPL"]
