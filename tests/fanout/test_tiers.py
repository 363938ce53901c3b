"""Conflation tiers, pure: the ladder policy (moves down, up, hysteresis), the pacing arrays, the hub honouring them,
the protocol's ``max_rate_hz`` and the heartbeat's tier fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import json_format

from fanout.encode import heartbeat_frame
from fanout.hub import Hub, Subscriber
from fanout.protocol import ClientProtocol
from fanout.tiers import LADDER, Pacing, TierLadder, TierPolicy, floor_of, rate_problem
from tickfan_proto import stream_pb2 as pb

from .conftest import bump, client_message, make_books

POLICY = TierPolicy(down_after=1.0, up_after=5.0, behind_bytes=1000, clear_bytes=100, sweep_every=0.25)


class Link:
    """What the adapter would report about each watched client: (unsent bytes, paused)."""

    def __init__(self) -> None:
        self.state: dict[int, tuple[int, bool]] = {}

    def __call__(self, key: int) -> tuple[int, bool] | None:
        return self.state.get(key)


def run(ladder: TierLadder, link: Link, start: float, end: float, step: float = 0.25) -> list[tuple[float, int, bool]]:
    moves = []
    t = start
    while t <= end + 1e-9:
        moves += [(t, m.tier, m.down) for m in ladder.sweep(t, link)]
        t += step
    return moves


def test_requested_rates_pick_the_floor_tier_and_the_cap_in_force() -> None:
    assert LADDER == (0.0, 0.25, 1.0)
    assert [floor_of(p) for p in (0.0, 0.1, 0.25, 0.5, 1.0, 10.0)] == [0, 0, 1, 1, 2, 2]
    ladder = TierLadder(POLICY)
    for key, hz in ((1, 0.0), (2, 4.0), (3, 2.0), (4, 0.5), (5, 100.0)):
        ladder.join(key)
        ladder.request(key, hz)
    assert [ladder.tier(k) for k in range(1, 6)] == [0, 1, 1, 2, 0]
    assert [ladder.rate_hz(k) for k in range(1, 6)] == [0.0, 4.0, 2.0, 0.5, 100.0]
    assert ladder.per_tier == [2, 2, 1]
    ladder.request(3, 0)  # the cap lifted: back to every flush
    assert ladder.tier(3) == 0 and ladder.rate_hz(3) == 0.0 and ladder.per_tier == [3, 1, 1]
    ladder.leave(3)
    ladder.leave(3)
    assert ladder.per_tier == [2, 1, 1] and len(ladder) == 4


def test_bad_rates_are_named() -> None:
    for hz in (0.0, 0.1, 2.0, 1e6):
        assert rate_problem(hz) is None
    for hz in (-1.0, 0.05, math.nan, math.inf, -math.inf):
        assert "max_rate_hz" in (rate_problem(hz) or "")


def test_a_client_behind_moves_down_one_tier_per_down_after_and_back_up_after_keeping_up() -> None:
    ladder, link = TierLadder(POLICY), Link()
    ladder.join(7)
    ladder.fell_behind(7)
    link.state[7] = (0, True)  # paused
    moves = run(ladder, link, 0.0, 2.6)
    assert moves == [(1.0, 1, True), (2.0, 2, True)]  # the clock starts again after each move
    assert run(ladder, link, 2.75, 4.0) == []  # the bottom: nothing further (the disconnect rules take over)
    assert ladder.tier(7) == 2 and ladder.moves_down == 2 and ladder.per_tier == [0, 0, 1]
    assert ladder.period(7) == 1.0
    link.state[7] = (50, False)  # reading again: keeping up
    moves = run(ladder, link, 4.25, 15.0)
    assert moves == [(9.25, 1, False), (14.25, 0, False)]
    assert ladder.moves_up == 2 and ladder.per_tier == [1, 0, 0]
    assert run(ladder, link, 15.25, 30.0) == []
    assert ladder.sweep(31.0, link) == [] and not ladder._watched  # caught up at its floor: no longer watched


def test_hysteresis_between_the_byte_marks_and_after_a_break() -> None:
    ladder, link = TierLadder(POLICY), Link()
    ladder.join(1)
    ladder.fell_behind(1)
    link.state[1] = (5000, False)  # over behind_bytes: behind though not paused
    assert run(ladder, link, 0.0, 1.0) == [(1.0, 1, True)]
    link.state[1] = (500, False)  # between the marks: neither behind nor keeping up
    assert run(ladder, link, 1.25, 20.0) == []
    link.state[1] = (5000, False)  # one sweep behind, then fine: the down clock restarts from scratch
    assert run(ladder, link, 20.25, 20.5) == []
    link.state[1] = (0, False)
    assert run(ladder, link, 20.75, 25.5) == []  # 4.75 s keeping up: not yet
    assert run(ladder, link, 25.75, 25.75) == [(25.75, 0, False)]


def test_a_capped_client_moves_below_its_floor_and_never_above_it() -> None:
    ladder, link = TierLadder(POLICY), Link()
    ladder.join(1)
    ladder.request(1, 2.0)  # floor tier 1 (250 ms), its own cap 500 ms
    assert (ladder.tier(1), ladder.period(1)) == (1, 0.5)
    ladder.fell_behind(1)
    link.state[1] = (0, True)
    assert run(ladder, link, 0.0, 1.0) == [(1.0, 2, True)]
    assert ladder.period(1) == 1.0
    link.state[1] = (0, False)
    assert run(ladder, link, 1.25, 30.0) == [(6.25, 1, False)]
    assert ladder.period(1) == 0.5
    ladder.request(1, 0.5)  # a slower cap: floor 2
    assert ladder.tier(1) == 2 and ladder.rate_hz(1) == 0.5


def test_a_demoted_client_keeps_its_tier_when_it_asks_for_a_faster_cap() -> None:
    ladder, link = TierLadder(POLICY), Link()
    ladder.join(1)
    ladder.fell_behind(1)
    link.state[1] = (0, True)
    run(ladder, link, 0.0, 2.0)
    assert ladder.tier(1) == 2
    ladder.request(1, 0)
    assert ladder.tier(1) == 2  # still behind-proven: it earns its way up


def test_a_client_gone_is_forgotten_by_the_sweep() -> None:
    ladder, link = TierLadder(POLICY), Link()
    ladder.join(1)
    ladder.fell_behind(1)
    assert ladder.sweep(0.0, link) == []  # the adapter says gone
    assert not ladder._watched
    ladder.fell_behind(99)  # never joined: ignored
    assert not ladder._watched


def test_sweeps_are_due_every_sweep_every() -> None:
    ladder = TierLadder(POLICY)
    assert ladder.due(10.0) and not ladder.due(10.1) and ladder.due(10.25)


def test_policy_checks_itself() -> None:
    for bad in ({"down_after": 0}, {"clear_bytes": 10, "behind_bytes": 5}, {"ladder": (0.25, 1.0)},
                {"ladder": (0.0, 1.0, 0.5)}):
        with pytest.raises(ValueError):
            TierPolicy(**bad)


# ------------------------------------------------------------------ pacing and the hub
def test_pacing_holds_a_slot_until_its_period_passed_since_it_was_last_sent() -> None:
    p = Pacing()
    p.assign(3, 500)
    p.assign(600, 0)  # grows
    assert p.paced == 1
    p.hold(1000)
    slots = np.array([0, 3, 3, 600], np.int64)
    idx, held = p.due_edges(np.arange(4), slots)
    assert list(idx) == [0, 1, 2, 3] and not held
    p.sent(np.array([3], np.int64))
    p.hold(1400)
    idx, held = p.due_edges(np.arange(4), slots)
    assert list(idx) == [0, 3] and held
    p.hold(1500)
    assert not p.due_edges(np.arange(4), slots)[1]
    p.assign(3, 0)
    assert p.paced == 0
    p.assign(-1, 5)  # a subscriber without a slot yet: nothing
    assert p.paced == 0


def updates_of(result: object, sub: Subscriber) -> list[pb.Quote]:
    out: list[pb.Quote] = []
    for s, frames in result:  # type: ignore[attr-defined]
        if s is sub:
            for f in frames:
                out.extend(pb.ServerMessage.FromString(f).quotes.quotes)
    return out


def test_the_hub_skips_a_paced_subscriber_until_due_then_sends_the_newest_once() -> None:
    books = make_books()
    hub = Hub(books, 16)
    fast, slow = Subscriber(1), Subscriber(2)
    hub.pace(slow, 500)  # before it has a slot: applied when it gets one
    for s in (fast, slow):
        hub.subscribe(s, "quotes", [1, 2])
        hub.subscribe(s, "depth", [1])
    hub.flush(0)
    got_fast = got_slow = 0
    for t in range(100, 1000, 100):  # a change every 100 ns; the slow one is due every 500
        bump(books, 1, 1_000_000 + t)
        result = hub.flush(t)
        got_fast += len(updates_of(result, fast))
        q = updates_of(result, slow)
        if q:
            got_slow += 1
            assert t in (100, 600) and q[0].bid_price == 1_000_000 + t  # the newest, never a backlog
            assert sum(1 for s, _ in result if s is slow) == 1
            frames = next(f for s, f in result if s is slow)
            assert len(frames) == 2  # depth in the same due flush as quotes
    assert got_fast == 9 and got_slow == 2
    assert hub.stats.conflated_skips == 0  # held by its tier, not stuck: not counted as skipped
    bump(books, 2, 2_000_000)
    result = hub.flush(1200)
    assert {q.symbol for q in updates_of(result, slow)} == {"AAPL", "TSLA"}  # everything owed, at once
    hub.pace(slow, 0)
    bump(books, 1, 1_500_000)
    assert updates_of(hub.flush(1250), slow)
    hub.remove(slow)
    assert hub.pacing.paced == 0


# ------------------------------------------------------------------ the protocol and the heartbeat
def ack_of(p: ClientProtocol, **subscribe: object) -> tuple[pb.ServerMessage, float | None]:
    reply = p.receive(client_message(subscribe=pb.Subscribe(**subscribe)))  # type: ignore[arg-type]
    return reply.messages[-1], reply.max_rate_hz


def test_subscribe_carries_max_rate_hz_and_a_bad_one_changes_nothing() -> None:
    p = ClientProtocol({"AAPL": 1, "TSLA": 2}.get)
    p.open()
    msg, rate = ack_of(p, symbols=["AAPL"], max_rate_hz=2.0)
    assert msg.WhichOneof("kind") == "subscribed" and rate == 2.0
    msg, rate = ack_of(p, symbols=["TSLA"])
    assert msg.WhichOneof("kind") == "subscribed" and rate is None  # absent: the cap stays
    msg, rate = ack_of(p, symbols=[], max_rate_hz=0)
    assert rate == 0.0  # present and 0: no cap
    for bad in (-1.0, 0.01, math.inf, math.nan):
        reply = p.receive(client_message(subscribe=pb.Subscribe(symbols=["MSFT"], max_rate_hz=bad)))
        assert [m.error.code for m in reply.messages] == ["bad_rate"] and reply.max_rate_hz is None
        assert not reply.subscribed
    reply = p.receive(client_message(subscribe=pb.Subscribe(symbols=["AAPL"], channels=["nope"], max_rate_hz=4)))
    assert reply.max_rate_hz is None  # refused whole
    reply = p.receive('{"subscribe": {"maxRateHz": 4}}')
    assert reply.max_rate_hz == 4.0


@pytest.mark.parametrize("tier,rate", [(0, 0.0), (1, 4.0), (2, 0.5), (1, 1 / 0.3)])
def test_heartbeat_tier_fields_match_protobuf(tier: int, rate: float) -> None:
    msg = pb.ServerMessage(heartbeat=pb.Heartbeat(server_time_ns=12345, resume_token="tok", tier=tier,
                                                  max_rate_hz=rate))
    assert heartbeat_frame(12345, "tok", [], False, tier, rate) == msg.SerializeToString()
    assert heartbeat_frame(12345, "tok", [], True, tier, rate) == json_format.MessageToJson(msg, indent=None).replace(
        ": ", ":").replace(", ", ",")
