"""Protocol error paths beyond the basics: each is answered, and none drifts the subscription."""

from __future__ import annotations

from fanout.config import FanoutConfig
from fanout.protocol import CLOSE_MESSAGE_TOO_BIG, ClientProtocol, Reply
from tickfan_proto import stream_pb2 as pb

LOCATES = {"AAPL": 1, "TSLA": 2, "MSFT": 3}


def proto(**settings: int) -> ClientProtocol:
    p = ClientProtocol(LOCATES.get, FanoutConfig(**settings))  # type: ignore[arg-type]
    p.open()
    return p


def send(p: ClientProtocol, msg: pb.ClientMessage) -> Reply:
    return p.receive(msg.SerializeToString())


def kinds(reply: Reply) -> list[str | None]:
    return [m.WhichOneof("kind") for m in reply.messages]


def test_unknown_channel_changes_nothing_on_subscribe_or_unsubscribe() -> None:
    p = proto()
    send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["AAPL"])))
    r = send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA"], channels=["quotes", "bogus"])))
    assert kinds(r) == ["error"] and r.messages[0].error.code == "unknown_channel" and r.subscribed == {}
    r = send(p, pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=["AAPL"], channels=["bogus"])))
    assert kinds(r) == ["error"] and r.messages[0].error.code == "unknown_channel" and r.unsubscribed == {}
    assert list(p.subscriptions["quotes"]) == ["AAPL"]


def test_symbols_are_normalised_to_upper_case_and_deduplicated() -> None:
    p = proto()
    r = send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=[" aapl", "Aapl", "tsla "])))
    assert r.subscribed == {"quotes": [1, 2]}
    r = send(p, pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=["aapl"])))
    assert r.unsubscribed == {"quotes": [1]}
    assert list(r.messages[-1].subscribed.symbols) == ["TSLA"]


def test_subscribed_ack_is_the_full_subscription_after_each_change() -> None:
    p = proto()
    send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["MSFT"])))
    r = send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["AAPL"], channels=["trades"])))
    ack = r.messages[-1].subscribed
    assert list(ack.symbols) == ["AAPL", "MSFT"] and list(ack.channels) == ["quotes", "trades"]


def test_too_many_symbols_is_per_channel_and_other_channels_still_apply() -> None:
    p = proto(max_symbols=1)
    send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["AAPL"])))
    r = send(p, pb.ClientMessage(subscribe=pb.Subscribe(symbols=["TSLA"], channels=["quotes", "trades"])))
    assert kinds(r) == ["error", "subscribed"]
    assert r.messages[0].error.code == "too_many_symbols" and list(r.messages[0].error.symbols) == ["TSLA"]
    assert r.subscribed == {"trades": [2]}


def test_all_unknown_symbols_still_acknowledge_the_unchanged_subscription() -> None:
    r = send(proto(), pb.ClientMessage(subscribe=pb.Subscribe(symbols=["ZZZZ", "QQQQ"])))
    assert kinds(r) == ["error", "subscribed"] and r.subscribed == {}
    assert list(r.messages[0].error.symbols) == ["ZZZZ", "QQQQ"]


def test_a_message_exactly_at_the_limit_is_accepted_and_text_counts_utf8_bytes() -> None:
    raw = pb.ClientMessage(ping=pb.Ping(nonce=1)).SerializeToString()
    assert kinds(proto(max_message_bytes=len(raw)).receive(raw)) == ["pong"]
    text = '{"ping":{' + "€€"  # 11 characters, 15 UTF-8 bytes
    r = proto(max_message_bytes=12).receive(text)
    assert r.close is not None and r.close[0] == CLOSE_MESSAGE_TOO_BIG


def test_fragments_over_the_limit_close_once() -> None:
    p = proto()
    r = p.too_large(70_000)
    assert kinds(r) == ["error"] and r.messages[0].error.code == "too_large" and r.close == (1009, "message too big")
    assert p.too_large(80_000).messages == [] and p.receive(b"").messages == []
