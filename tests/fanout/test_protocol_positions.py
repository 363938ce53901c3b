"""The positions channel in the pure protocol core: one relay subscription with the orders channel, the snapshot
asked for when it is live, and account updates in version order, each once, nothing before the snapshot."""

from __future__ import annotations

from fanout.positions import AccountSequence
from fanout.protocol import ClientProtocol, Reply

from .test_protocol_orders import ack, errors, msg, proto


def frames(p: ClientProtocol) -> list[bytes | str]:
    out = []
    while (f := p.take_order_frame()) is not None:
        out.append(f)
    return out


def live(p: ClientProtocol, *channels: str) -> list[Reply]:
    """Subscribe to ``channels`` and confirm the relay subscription: the released replies."""
    r = p.receive(msg("subscribe", channels=channels))
    assert r.orders_subscribe == "alice"
    return p.orders_ready(True)


def test_positions_needs_credentials() -> None:
    p = proto()
    p.open()
    assert errors(p.receive(msg("subscribe", channels=("positions",)))) == ["unauthenticated"]
    assert not p.positions


def test_subscribe_asks_for_the_snapshot_once_live_after_the_ack() -> None:
    p = proto()
    p.open("Bearer good-alice")
    released = live(p, "positions")
    assert ack(released[0]) == ["positions"] and released[-1].account_snapshot == "alice"
    # updates before the snapshot wait for it; the snapshot covers v5, so v4 and v5 are dropped, v6 follows
    for v in (4, 5, 6):
        assert p.account_frame(f"u{v}".encode(), v) is None
    assert frames(p) == []
    assert p.account_frame(b"snap5", 5, snapshot=True) is None
    assert frames(p) == [b"snap5", b"u6"]
    assert p.account_frame(b"u6", 6) is None  # re-published: once only
    assert p.account_frame(b"u7", 7) is None
    assert frames(p) == [b"u7"]


def test_orders_and_positions_share_one_relay_subscription() -> None:
    p = proto()
    p.open("Bearer good-alice")
    live(p, "orders")
    r = p.receive(msg("subscribe", channels=("positions",)))
    assert r.orders_subscribe is None and r.account_snapshot == "alice" and ack(r) == ["orders", "positions"]
    r = p.receive(msg("unsubscribe", channels=("orders",)))
    assert r.orders_unsubscribe is None and ack(r) == ["positions"]
    r = p.receive(msg("unsubscribe", channels=("positions",)))
    assert r.orders_unsubscribe == "alice" and ack(r) == []
    assert p.account_frame(b"u1", 1) is None and frames(p) == []  # not subscribed: nothing


def test_live_again_after_an_outage_asks_for_a_new_snapshot() -> None:
    p = proto()
    p.open("Bearer good-alice")
    live(p, "positions")
    p.account_frame(b"s3", 3, snapshot=True)
    assert frames(p) == [b"s3"]
    again = p.orders_ready(True)
    assert [r.account_snapshot for r in again] == ["alice"]
    p.account_frame(b"u9", 9)
    assert frames(p) == []  # waits for the new snapshot
    p.account_frame(b"s8", 8, snapshot=True)
    assert frames(p) == [b"s8", b"u9"]


def test_no_snapshot_readable_releases_the_waiting_updates() -> None:
    seq = AccountSequence(limit=2)
    assert seq.take(b"u4", 4) == [] and seq.take(b"u5", 5) == []
    assert seq.take(b"u6", 6) == "over 2 account updates before the snapshot"
    assert seq.take(b"", -1, snapshot=True) == [b"u4", b"u5"]
    assert seq.take(b"old", 3, snapshot=True) == []  # older than what went out
