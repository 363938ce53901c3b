"""Authentication and the orders channel in the pure protocol core: events out, nothing touched."""

from __future__ import annotations

import pytest

from fanout.protocol import ClientProtocol, Reply
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError

LOCATES = {"AAPL": 1, "TSLA": 2}
TOKENS = {"good-alice": "alice", "good-bob": "bob"}


def verify(token: str) -> str:
    if token == "old":
        raise AuthError("token_expired", "the bearer token has expired")
    if token not in TOKENS:
        raise AuthError("invalid_token", "invalid bearer token")
    return TOKENS[token]


def proto(orders_enabled: bool = True) -> ClientProtocol:
    return ClientProtocol(LOCATES.get, verify=verify, orders_enabled=orders_enabled)


def msg(kind: str, symbols: tuple[str, ...] = (), channels: tuple[str, ...] = ()) -> bytes:
    cls = pb.Subscribe if kind == "subscribe" else pb.Unsubscribe
    return bytes(pb.ClientMessage(**{kind: cls(symbols=symbols, channels=channels)}).SerializeToString())


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


def test_orders_subscription_is_an_event_for_the_adapter_once() -> None:
    p = proto()
    p.open(token="good-alice")
    r = p.receive(msg("subscribe", ("IGNORED",), ("orders",)))  # symbols are ignored for orders
    assert r.orders_subscribe == "alice" and r.subscribed == {} and errors(r) == []
    assert ack(r) == ["orders"] and list(r.messages[-1].subscribed.symbols) == []
    again = p.receive(msg("subscribe", (), ("orders",)))
    assert again.orders_subscribe is None and ack(again) == ["orders"]
    both = p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    assert both.subscribed == {"quotes": [1]} and both.orders_subscribe is None and ack(both) == ["quotes", "orders"]


def test_orders_unsubscribe_is_an_event_and_other_channels_are_untouched() -> None:
    p = proto()
    p.open("Bearer good-bob")
    p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    quotes_only = p.receive(msg("unsubscribe", ("AAPL",)))  # default channel: quotes, not orders
    assert quotes_only.orders_unsubscribe is None and ack(quotes_only) == ["orders"]
    r = p.receive(msg("unsubscribe", (), ("orders",)))
    assert r.orders_unsubscribe == "bob" and ack(r) == [] and not p.orders
    assert p.receive(msg("unsubscribe", (), ("orders",))).orders_unsubscribe is None  # not subscribed: no event


def test_a_node_without_the_orders_channel_says_so() -> None:
    p = proto(orders_enabled=False)
    p.open(token="good-alice")
    r = p.receive(msg("subscribe", ("AAPL",), ("quotes", "orders")))
    assert errors(r) == ["orders_unavailable"] and r.subscribed == {} and r.orders_subscribe is None


def test_subscribed_message_is_the_full_subscription() -> None:
    p = proto()
    p.open(token="good-alice")
    p.receive(msg("subscribe", ("TSLA",), ("depth", "orders")))
    m = p.subscribed_message().subscribed
    assert list(m.symbols) == ["TSLA"] and list(m.channels) == ["depth", "orders"]
