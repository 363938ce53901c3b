"""The pure parts of resume: the token codec, the replay planner and the node's trade history."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fanout.history import TradeHistory
from fanout.resume import ResumeState, TokenCodec, plan_replay, resume_key
from normalize.trades import TradePrints

CHANNELS = ("quotes", "trades", "depth")
CODEC = TokenCodec(resume_key("test")[0], CHANNELS, 20)

tickers = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=8)
states = st.builds(ResumeState, st.integers(0, 2**63), st.integers(0, 2**63),
                   st.dictionaries(tickers, st.tuples(st.integers(0, 7), st.integers(0, 2**63)), max_size=20))


@settings(max_examples=200)
@given(states)
def test_tokens_round_trip_and_stay_bounded(state: ResumeState) -> None:
    token = CODEC.encode(state)
    assert len(token) <= CODEC.max_chars
    assert CODEC.decode(token) == state


@settings(max_examples=200)
@given(states, st.integers(0, 10_000))
def test_any_changed_character_is_refused(state: ResumeState, where: int) -> None:
    token = bytearray(CODEC.encode(state).encode())
    i = where % len(token)
    token[i] = ord("A") if token[i] != ord("A") else ord("B")
    assert CODEC.decode(token.decode()) is None


def test_foreign_oversized_and_capped_tokens() -> None:
    state = ResumeState(1, 2, {"AAPL": (2, 5)})
    other = TokenCodec(resume_key("another")[0], CHANNELS, 20)
    assert other.decode(CODEC.encode(state)) is None
    assert CODEC.decode("A" * (CODEC.max_chars + 1)) is None
    many = ResumeState(1, 2, {f"S{i:03}": (1, i) for i in range(50)})
    assert len(CODEC.decode(CODEC.encode(many)).symbols) == 20  # type: ignore[union-attr]
    # a key from the JWT secret (labelled: never the JWT key itself), the same on every node
    assert resume_key("", {"TICKFAN_JWT_SECRET": "s"})[0] == resume_key("", {"TICKFAN_JWT_SECRET": "s"})[0] != b"s"
    assert resume_key("", {"TICKFAN_RESUME_SECRET": "r", "TICKFAN_JWT_SECRET": "s"})[1] == "TICKFAN_RESUME_SECRET"
    assert resume_key("", {})[0] != resume_key("", {})[0]  # random: this process only


def test_plan_replay() -> None:
    assert plan_replay(5, 5, []).verdict == "complete"
    p = plan_replay(5, 9, [6, 7, 8, 9])
    assert (p.replay_from, p.upto, p.missing) == (6, 9, None)
    p = plan_replay(5, 9, [8, 9])
    assert (p.replay_from, p.missing, p.verdict) == (8, (6, 7), "partial")
    p = plan_replay(5, 9, [6, 7, 9])  # a hole: only the run ending at the newest is replayed
    assert (p.replay_from, p.missing) == (9, (6, 8))
    p = plan_replay(5, 9, [])
    assert (p.replay_from, p.missing) == (10, (6, 9))


def prints(locs: list[int], tseqs: list[int]) -> TradePrints:
    n = len(locs)
    z = np.zeros(n, np.int64)
    return TradePrints(np.array(locs, np.int64), z, z, z, z, z, np.array(tseqs, np.int64), z)


def test_history_keeps_per_symbol_count_age_and_capacity() -> None:
    h = TradeHistory(8, per_symbol=3, max_age_ns=100)
    h.record(prints([1, 2, 1, 1], [1, 1, 2, 3]), now_ns=0)
    h.record(prints([1, 2], [4, 2]), now_ns=50)
    assert h.window(1, 0, 10, now_ns=60).trade_seq.tolist() == [2, 3, 4]  # the newest 3 of symbol 1
    assert h.window(2, 1, 10, now_ns=60).trade_seq.tolist() == [2]
    assert h.window(1, 0, 10, now_ns=120).trade_seq.tolist() == [4]  # older than 100 ns are gone
    h.record(prints([3] * 7, list(range(1, 8))), now_ns=60)  # the ring holds 8 in all
    assert h.window(1, 0, 10, now_ns=60).trade_seq.tolist() == []  # pushed out by symbol 3's
    assert h.window(2, 0, 10, now_ns=60).trade_seq.tolist() == [2]
    assert h.window(3, 0, 10, now_ns=60).trade_seq.tolist() == [5, 6, 7]


def test_history_windows_ask_nothing_of_the_ring_when_nothing_is_wanted_and_follow_every_record() -> None:
    """A quote-only resume wants no prints (a reconnect storm resumes thousands between two flushes); the ring's
    grouping is reused until the next record, and a record is always seen."""
    h = TradeHistory(16, per_symbol=10, max_age_ns=1_000)
    assert h.windows({}, now_ns=0) == {}
    h.record(prints([1, 2, 1], [1, 1, 2]), now_ns=0)
    assert h.window(1, 0, 10, now_ns=0).trade_seq.tolist() == [1, 2]
    assert h.window(2, 0, 10, now_ns=0).trade_seq.tolist() == [1]  # the same grouping, reused
    h.record(prints([2, 1], [2, 3]), now_ns=1)
    assert h.windows({1: (1, 10), 2: (0, 10)}, now_ns=1)[1].trade_seq.tolist() == [2, 3]
    assert h.window(2, 0, 10, now_ns=1).trade_seq.tolist() == [1, 2]
