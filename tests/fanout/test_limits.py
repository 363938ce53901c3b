"""The stream's abuse limits, pure (issue 10): buckets, admission, fragments, subscribe churn."""

from __future__ import annotations

import pytest

from fanout.config import FanoutConfig
from fanout.limits import NODE_RATE, PER_IP, PER_USER, RATE, TOTAL, ConnectionLimits, TokenBucket, address_key
from fanout.protocol import CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, ClientProtocol
from tickfan_proto import stream_pb2 as pb

from .conftest import SYMBOLS, subscribe


def test_token_bucket_bursts_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05) and bucket.take(0.1)  # one token per 0.1 s
    assert not bucket.take(100.0, 4) and bucket.take(100.0, 3)  # never more than the burst; short: nothing spent
    assert not bucket.full(100.0) and bucket.full(100.5)
    assert not bucket.take(50.0)  # a clock going back refills nothing


@pytest.mark.parametrize(("host", "exempt", "limited"), [
    ("203.0.113.7", "203.0.113.7", "203.0.113.7"),
    ("127.0.0.1", None, "127.0.0.1"),
    ("::1", None, "::/64"),
    ("::ffff:127.0.0.5", None, "127.0.0.5"),
    ("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),  # an IPv6 client counts per /64
    ("fe80::1%eth0", "fe80::/64", "fe80::/64"),
    (None, None, None),
])
def test_address_keys(host: str | None, exempt: str | None, limited: str | None) -> None:
    assert address_key(host) == exempt
    assert address_key(host, limit_loopback=True) == limited


def limits(**kw: int | float | bool) -> ConnectionLimits:
    settings: dict[str, int | float | bool] = {
        "max_connections": 100, "max_connections_per_ip": 3, "connection_rate_per_ip": 1.0,
        "connection_burst_per_ip": 5, "max_connections_per_user": 2, "limit_loopback": False, **kw}
    return ConnectionLimits(**settings)  # type: ignore[arg-type]


def test_per_address_cap_and_rate_refuse_with_429_and_count_by_reason() -> None:
    lim = limits()
    now = 0.0
    for _ in range(3):
        assert lim.admit("203.0.113.7", now) is None
        lim.opened("203.0.113.7")
    refused = lim.admit("203.0.113.7", now)
    assert refused is not None and (refused.reason, refused.status) == (PER_IP, 429)
    assert lim.admit("198.51.100.1", now) is None  # another address is not affected
    lim.closed("203.0.113.7")
    assert lim.admit("203.0.113.7", now) is None  # the fifth attempt: the last token of the burst
    lim.opened("203.0.113.7")
    lim.closed("203.0.113.7")
    # a slot is free, but the burst of 5 attempts is spent: the rate refuses now
    refused = lim.admit("203.0.113.7", now)
    assert refused is not None and (refused.reason, refused.status) == (RATE, 429)
    assert lim.admit("203.0.113.7", now + 1.0) is None  # a token a second
    assert lim.refused == {TOTAL: 0, PER_IP: 1, RATE: 1, PER_USER: 0, NODE_RATE: 0}
    assert lim.per_ip == {"203.0.113.7": 2}


def test_loopback_is_exempt_from_per_address_limits_unless_asked() -> None:
    lim = limits()
    for _ in range(50):
        assert lim.admit("127.0.0.1", 0.0) is None
        lim.opened("127.0.0.1")
    assert lim.per_ip == {} and lim.open == 50
    strict = limits(limit_loopback=True)
    verdicts = []
    for _ in range(5):
        verdicts.append(strict.admit("127.0.0.1", 0.0))
        strict.opened("127.0.0.1")
    assert [v.reason if v else None for v in verdicts] == [None, None, None, PER_IP, PER_IP]


def test_the_total_cap_refuses_everyone_with_503() -> None:
    lim = limits(max_connections=2)
    for host in ("127.0.0.1", "203.0.113.7"):
        assert lim.admit(host, 0.0) is None
        lim.opened(host)
    for host in ("127.0.0.1", "198.51.100.1"):
        refused = lim.admit(host, 0.0)
        assert refused is not None and (refused.reason, refused.status) == (TOTAL, 503)
    lim.closed("127.0.0.1")
    assert lim.admit("127.0.0.1", 0.0) is None


def test_the_node_wide_rate_refuses_a_herd_from_many_addresses_with_503() -> None:
    """Each address within its own budget, together too many for the node: a second's worth, then the rate."""
    lim = limits(connection_rate=4.0)
    hosts = [f"198.51.100.{i}" for i in range(1, 11)]
    verdicts = [lim.admit(h, 0.0) for h in hosts]
    assert verdicts[:4] == [None] * 4
    assert all(v is not None and (v.reason, v.status, v.code) == (NODE_RATE, 503, "server_busy") for v in verdicts[4:])
    assert lim.refused[NODE_RATE] == 6
    assert lim.admit("127.0.0.1", 0.0) is not None  # loopback too: the node's own protection
    assert lim.admit("198.51.100.99", 0.25) is None  # refilled at 4/s
    # an address refused by its own limit spends none of the node's budget
    single = limits(connection_rate=2.0, max_connections_per_ip=1)
    assert single.admit("203.0.113.7", 0.0) is None
    single.opened("203.0.113.7")
    for _ in range(5):
        refused = single.admit("203.0.113.7", 0.0)
        assert refused is not None and refused.reason == PER_IP
    assert single.admit("203.0.113.8", 0.0) is None
    assert limits().admit("203.0.113.7", 0.0) is None  # 0: no node-wide limit (the default)


def test_authenticated_connections_per_user() -> None:
    lim = limits()
    assert lim.user_joined("alice") is None and lim.user_joined("alice") is None
    refused = lim.user_joined("alice")
    assert refused is not None and refused.reason == PER_USER
    assert lim.user_joined("bob") is None
    lim.user_left("alice")
    assert lim.user_joined("alice") is None
    assert lim.per_user == {"alice": 2, "bob": 1} and lim.refused[PER_USER] == 1


def test_the_per_address_table_stays_bounded_under_many_addresses() -> None:
    lim = limits()
    for i in range(20_000):  # one attempt each from 20,000 addresses, 1 ms apart
        assert lim.admit(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", i / 1000) is None
    assert lim.tracked_addresses < 12_000  # buckets refill in 5 s: older ones are swept


# ------------------------------------------------------------------ the connection's own limits
def open_protocol(**settings: float | int) -> ClientProtocol:
    p = ClientProtocol({s: i for i, s in enumerate(SYMBOLS, start=1)}.get,
                       FanoutConfig(**settings))  # type: ignore[arg-type]
    p.open()
    return p


def test_zero_byte_fragments_count_and_close_with_1009() -> None:
    """The Why: 200,000 empty non-final fragments were held on one open connection, never counted."""
    p = open_protocol()
    closes = []
    for i in range(200_000):
        reply = p.receive_frame(b"", text=False, fin=False, continuation=i > 0, now=0.0)
        if reply.close is not None:
            closes.append((i, reply.close[0], reply.messages[0].error.code))
            break
    assert closes == [(128, CLOSE_MESSAGE_TOO_BIG, "too_many_fragments")]
    assert p.closed and p.closed_for == "too_many_fragments" and not p._parts  # the parts were dropped
    assert p.receive_frame(b"", text=False, fin=False, continuation=True).close is None  # nothing more taken


def test_a_message_of_at_most_max_fragments_is_assembled() -> None:
    p = open_protocol(max_fragments=4)
    raw = subscribe("AAPL")
    parts = [raw[:2], b"", raw[2:5], raw[5:]]
    replies = [p.receive_frame(part, text=False, fin=i == 3, continuation=i > 0) for i, part in enumerate(parts)]
    assert replies[-1].subscribed == {"quotes": [1]} and not p.closed


def test_fragments_beyond_their_rate_close_with_1008() -> None:
    p = open_protocol(max_fragments=8, max_fragments_per_second=10)
    ping = pb.ClientMessage(ping=pb.Ping(nonce=1)).SerializeToString()
    codes = []
    now = 0.0
    for _ in range(20):  # two-fragment pings, 50 a second: 100 fragments/s against 10/s (burst 8)
        now += 0.02
        for reply in (p.receive_frame(ping[:1], text=False, fin=False, now=now),
                      p.receive_frame(ping[1:], text=False, fin=True, continuation=True, now=now)):
            if reply.close is not None:
                codes.append(reply.close[0])
    assert codes == [CLOSE_POLICY_VIOLATION] and p.closed_for == "fragment_rate"


def test_fragments_at_their_rate_are_fine() -> None:
    p = open_protocol(max_fragments=8, max_fragments_per_second=10)
    ping = pb.ClientMessage(ping=pb.Ping(nonce=1)).SerializeToString()
    for i in range(50):
        now = i * 0.25  # 8 fragments/s
        p.receive_frame(ping[:1], text=False, fin=False, now=now)
        assert p.receive_frame(ping[1:], text=False, fin=True, continuation=True, now=now).messages[0].pong
    assert not p.closed


def big_protocol(**settings: float | int) -> ClientProtocol:
    names = {f"S{i:04d}": i for i in range(1, 1001)}
    p = ClientProtocol(names.get, FanoutConfig(**settings))  # type: ignore[arg-type]
    p.open()
    return p


def churn(kind: str, n: int = 1000) -> bytes:
    names = [f"S{i:04d}" for i in range(1, n + 1)]
    if kind == "subscribe":
        message = pb.ClientMessage(subscribe=pb.Subscribe(symbols=names, channels=["quotes", "depth"]))
    else:
        message = pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=names, channels=["quotes", "depth"]))
    return bytes(message.SerializeToString())


def test_subscribe_churn_is_limited_by_a_symbol_budget() -> None:
    """The Why: 1,000 symbols subscribed and unsubscribed inside the 20 msg/s limit, every cycle re-encoded."""
    p = big_protocol()  # 2,000 symbols/s, burst 2,000
    now = 0.0
    changed = limited = 0
    for _ in range(20):  # 20 messages/s: inside the message rate
        now += 0.05
        for kind in ("subscribe", "unsubscribe"):
            before = {c: dict(s) for c, s in p.subscriptions.items()}
            reply = p.receive(churn(kind), now)
            codes = [m.error.code for m in reply.messages if m.WhichOneof("kind") == "error"]
            if codes:
                assert codes == ["symbol_rate_limited"] and not reply.subscribed and not reply.unsubscribed
                assert p.subscriptions == before  # refused whole: nothing changed
                limited += 1
            else:
                changed += 1
    # one second: the burst (one subscribe + one unsubscribe) and about one more cycle's worth of refill
    assert changed <= 4 and limited >= 16 and p.symbol_rate_limited == limited


def test_the_symbol_budget_allows_a_full_subscription_and_refills() -> None:
    p = big_protocol(max_symbols_per_second=100, symbol_burst=1000)
    assert p.receive(churn("subscribe"), 0.0).subscribed["quotes"][:2] == [1, 2]
    refused = p.receive(churn("unsubscribe", 10), 0.0)
    assert refused.messages[0].error.code == "symbol_rate_limited"
    assert p.receive(churn("unsubscribe", 10), 0.1).unsubscribed["depth"] == list(range(1, 11))
    assert p.receive(churn("subscribe", 0), 0.1).messages[0].WhichOneof("kind") == "subscribed"  # no symbols: free


def test_symbol_burst_below_max_symbols_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="symbol_burst"):
        FanoutConfig(max_symbols=1000, symbol_burst=999)
    with pytest.raises(ValueError, match="max_fragments"):
        FanoutConfig(max_fragments=0)
