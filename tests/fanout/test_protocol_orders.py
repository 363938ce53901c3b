"""Authentication and the orders channel in the pure protocol core: events out, nothing touched."""

from __future__ import annotations

import pytest

from fanout.config import FanoutConfig
from fanout.protocol import ClientProtocol, ClientProtocolError, ConnectionState, Reply, parse_upgrade
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims

LOCATES = {"AAPL": 1, "TSLA": 2}
TOKENS = {"good-alice": "alice", "good-bob": "bob"}


def verify(token: str) -> Claims:
    if token == "old":
        raise AuthError("token_expired", "the bearer token has expired")
    if token not in TOKENS:
        raise AuthError("invalid_token", "invalid bearer token")
    return Claims(TOKENS[token], expires=2e9, issued=1e9)


def proto(orders_enabled: bool = True, **settings: int) -> ClientProtocol:
    return ClientProtocol(LOCATES.get, FanoutConfig(**settings), verify=verify,  # type: ignore[arg-type]
                          orders_enabled=orders_enabled)


def msg(kind: str, symbols: tuple[str, ...] = (), channels: tuple[str, ...] = ()) -> bytes:
    if kind == "subscribe":
        return pb.ClientMessage(subscribe=pb.Subscribe(symbols=symbols, channels=channels)).SerializeToString()
    return pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=symbols, channels=channels)).SerializeToString()


def errors(reply: Reply) -> list[str]:
    return [m.error.code for m in reply.messages if m.WhichOneof("kind") == "error"]


def ack(reply: Reply) -> list[str]:
    return list(reply.messages[-1].subscribed.channels)


@pytest.mark.parametrize(("authorization", "token", "user", "code"), [
    (None, None, None, None),  # anonymous, silently
    ("Bearer good-alice", None, "alice", None),
    ("bearer good-alice", None, "alice", None),
    (None, "good-bob", "bob", None),
    ("Bearer good-alice", "good-bob", "alice", None),  # the header wins
    ("Bearer forged", None, None, "invalid_token"),
    (None, "old", None, "token_expired"),
    (None, "", None, "invalid_token"),
    ("Basic dXNlcjpwYXNz", None, None, "unauthenticated"),
    ("Bearer forged", "good-bob", None, "invalid_token"),  # a bad header is not rescued by the query
])
def test_open_decides_who_the_connection_is(authorization: str | None, token: str | None, user: str | None,
                                            code: str | None) -> None:
    p = proto()
    r = p.open(authorization, token)
    assert p.user == user
    assert errors(r) == ([code] if code else [])
    assert not r.subscribed and r.orders_subscribe is None and r.close is None


def test_anonymous_orders_subscription_is_refused_and_nothing_changes() -> None:
    p = proto()
    p.open()
    p.receive(msg("subscribe", ("AAPL",)))
    for channels in (("orders",), ("quotes", "orders"), ("orders", "depth")):
        r = p.receive(msg("subscribe", ("TSLA",), channels))
        assert errors(r) == ["unauthenticated"] and len(r.messages) == 1
        assert r.subscribed == {} and r.orders_subscribe is None
    assert p.subscriptions["quotes"] == {"AAPL": 1} and not p.subscriptions["depth"] and not p.orders


def subscribed_orders(p: ClientProtocol) -> None:
    r = p.receive(msg("subscribe", (), ("orders",)))
    assert r.orders_subscribe == p.user and r.messages == []
    (released,) = p.orders_ready(True)
    assert ack(released) == ["orders"] and p.state is ConnectionState.ORDERS


def test_orders_subscription_is_an_event_for_the_adapter_and_its_ack_waits_for_the_relay() -> None:
    p = proto()
    p.open(token="good-alice")
    r = p.receive(msg("subscribe", ("IGNORED",), ("orders",)))  # symbols are ignored for orders
    # only the relay event now: the ack would promise updates that Redis has not confirmed yet
    assert r == Reply(orders_subscribe="alice") and p.state is ConnectionState.AWAITING_ORDERS
    assert p.receive(msg("subscribe", ("AAPL",))) == Reply()  # held behind it, in order
    ping = pb.ClientMessage(ping=pb.Ping(nonce=3)).SerializeToString()
    assert p.receive(ping) == Reply()
    first, second, third = p.orders_ready(True)
    assert ack(first) == ["orders"] and list(first.messages[-1].subscribed.symbols) == []
    assert second.subscribed == {"quotes": [1]} and ack(second) == ["quotes", "orders"]
    assert third.messages[0].pong.nonce == 3
    assert p.state is ConnectionState.ORDERS
    again = p.receive(msg("subscribe", (), ("orders",)))
    assert again.orders_subscribe is None and ack(again) == ["quotes", "orders"]  # already: no event


def test_a_channel_down_at_subscription_still_releases_the_ack() -> None:
    p = proto()
    p.open(token="good-alice")
    p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    (released,) = p.orders_ready(False)  # the relay sends an orders_unavailable frame beside it
    assert released.subscribed == {"quotes": [1]} and ack(released) == ["quotes", "orders"]
    assert p.orders_ready(False) == []
    (live,) = p.orders_ready(True)  # live again after the outage: the ack says so
    assert ack(live) == ["quotes", "orders"] and live.subscribed == {}


def test_unsubscribe_then_subscribe_while_held_waits_for_the_second_confirmation() -> None:
    p = proto()
    p.open(token="good-alice")
    p.receive(msg("subscribe", (), ("orders",)))
    p.receive(msg("unsubscribe", (), ("orders",)))
    p.receive(msg("subscribe", (), ("orders",)))
    first, second, resubscribe = p.orders_ready(True)
    assert ack(first) == ["orders"] and second.orders_unsubscribe == "alice" and ack(second) == []
    assert resubscribe == Reply(orders_subscribe="alice") and p.state is ConnectionState.AWAITING_ORDERS
    (last,) = p.orders_ready(True)
    assert ack(last) == ["orders"] and p.state is ConnectionState.ORDERS


def test_orders_unsubscribe_is_an_event_and_other_channels_are_untouched() -> None:
    p = proto()
    p.open("Bearer good-bob")
    p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    p.orders_ready(True)
    quotes_only = p.receive(msg("unsubscribe", ("AAPL",)))  # default channel: quotes, not orders
    assert quotes_only.orders_unsubscribe is None and ack(quotes_only) == ["orders"]
    r = p.receive(msg("unsubscribe", (), ("orders",)))
    assert r.orders_unsubscribe == "bob" and ack(r) == [] and not p.orders
    assert p.state is ConnectionState.OPEN
    assert p.receive(msg("unsubscribe", (), ("orders",))).orders_unsubscribe is None  # not subscribed: no event


def test_order_frames_queue_until_taken_and_past_the_limit_the_connection_must_go() -> None:
    p = proto(order_queue_max=2)
    p.open(token="good-alice")
    subscribed_orders(p)
    assert p.order_frame(b"one") is None and p.order_frame("two") is None
    assert p.order_frame(b"three") == "over 2 order updates unread"
    assert [p.take_order_frame(), p.take_order_frame(), p.take_order_frame()] == [b"one", "two", None]
    assert p.connection_lost() == "alice" and p.state is ConnectionState.CLOSED
    assert p.order_frame(b"late") is None and p.take_order_frame() is None  # gone: nothing queued
    assert p.orders_ready(True) == []


def test_illegal_transitions_raise() -> None:
    p = proto()
    with pytest.raises(ClientProtocolError):
        p.receive(msg("subscribe", ("AAPL",)))  # before open()
    p.open()
    with pytest.raises(ClientProtocolError):
        p.open()  # credentials are taken once
    p.connection_lost()
    assert p.connection_lost() is None  # idempotent
    assert p.receive(msg("subscribe", ("AAPL",))) == Reply()  # frames still buffered after the end: ignored


def test_a_close_held_behind_the_orders_subscription_goes_out_on_release() -> None:
    p = proto(max_message_bytes=64)
    p.open(token="good-alice")
    p.receive(msg("subscribe", (), ("orders",)))
    assert p.receive(b"\x00" * 65) == Reply()  # held
    ack_reply, too_big = p.orders_ready(True)
    assert errors(too_big) == ["too_large"] and too_big.close == (1009, "message too big")
    assert p.state is ConnectionState.CLOSED


def test_fragments_are_reassembled_and_refused_past_the_limit() -> None:
    p = proto(max_message_bytes=64)
    p.open()
    raw = msg("subscribe", ("AAPL",))
    assert p.receive_frame(raw[:3], text=False, fin=False) == Reply()
    assert p.receive_frame(raw[3:], text=False, continuation=True).subscribed == {"quotes": [1]}
    assert errors(p.receive_frame(b"\xff", text=True)) == ["bad_message"]  # text that is not UTF-8
    p.receive_frame(b"\x00" * 40, text=False, fin=False)
    r = p.receive_frame(b"\x00" * 40, text=False, fin=False, continuation=True)
    assert errors(r) == ["too_large"] and r.close is not None and p.state is ConnectionState.CLOSED


@pytest.mark.parametrize(("target", "expected"), [
    ("/v1/stream", (False, None)),
    ("/v1/stream?format=json", (True, None)),
    ("/v1/stream?token=abc&format=protobuf", (False, "abc")),
    ("/v1/stream?token=", (False, "")),
    ("/v1/other?format=json", None),
])
def test_parse_upgrade(target: str, expected: tuple[bool, str | None] | None) -> None:
    up = parse_upgrade(target, "/v1/stream")
    assert (None if up is None else (up.json_mode, up.token)) == expected


def test_a_node_without_the_orders_channel_says_so() -> None:
    p = proto(orders_enabled=False)
    p.open(token="good-alice")
    r = p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    assert errors(r) == ["orders_unavailable"] and r.subscribed == {} and r.orders_subscribe is None


def test_subscribed_message_is_the_full_subscription() -> None:
    p = proto()
    p.open(token="good-alice")
    p.receive(msg("subscribe", ("TSLA",), ("depth", "orders")))
    p.orders_ready(True)
    m = p.subscribed_message().subscribed
    assert list(m.symbols) == ["TSLA"] and list(m.channels) == ["depth", "orders"]
