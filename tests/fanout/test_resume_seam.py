"""The seam between a resume's replay and the live prints after it, on the pure core (no sockets, no clock).

A loaded node flushes late, so one flush may carry hundreds of prints of a busy symbol. The live path used to
keep the first 100 of a symbol per flush and drop the rest, while the subscriber's position moved past them: a
hole that no resume could fill (CI: ``test_resume_after_3s_disconnect_at_20000_msgs_loses_no_print`` on a machine
at load 15, a TSLA flush of 126 prints). Here the late flushes are made on purpose.
"""

from __future__ import annotations

import json

import pytest

from fanout.encode import TRADE_FRAME_PRINTS
from fanout.history import TradeHistory
from fanout.hub import Hub, Subscriber
from fanout.resume import plan_replay
from ingest.messages import Trade
from normalize import Books
from tickfan_proto import stream_pb2 as pb

from .conftest import make_books

NOW = 10**12
TSLA = 2


def trade(books: Books, loc: int, n: int) -> None:
    for _ in range(n):
        books.apply(Trade(loc, 0, 7, 0, "B", 10, "TSLA", 1_000_000, 1))


def trade_seqs(frames: object, loc_symbol: str = "TSLA") -> list[int]:
    out: list[int] = []
    for f in frames:  # type: ignore[attr-defined]
        if isinstance(f, str):
            out += [int(t["tradeSeq"]) for t in json.loads(f)["trades"]["trades"] if t["symbol"] == loc_symbol]
        else:
            out += [t.trade_seq for t in pb.ServerMessage.FromString(f).trades.trades if t.symbol == loc_symbol]
    return out


def live(hub: Hub, sub: Subscriber) -> list[int]:
    return [n for s, frames in hub.flush(NOW, send_time_ns=NOW) if s is sub for n in trade_seqs(frames)]


def resume(hub: Hub, sub: Subscriber, seen: int) -> list[int]:
    """What the server's ``_replay`` does for one symbol: subscribe, replay the history window after ``seen`` up
    to where live delivery is, and hold live prints back to there."""
    hub.subscribe(sub, "trades", [TSLA])
    assert hub.history is not None
    upto = int(hub.last_trade_seq[TSLA])
    window = hub.history.window(TSLA, seen, upto, NOW)
    plan = plan_replay(seen, upto, window.trade_seq.tolist())
    assert plan.missing is None
    sub.trade_seen[TSLA] = sub.trade_floor[TSLA] = upto
    return [int(n) for n in window.trade_seq if plan.replay_from <= n <= plan.upto]


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize("burst", [99, 101, 126, TRADE_FRAME_PRINTS + 1, 3 * TRADE_FRAME_PRINTS + 7])
def test_replay_then_late_flushes_give_every_print_once_in_order(json_mode: bool, burst: int) -> None:
    books = make_books()
    hub = Hub(books, 16)
    hub.history = TradeHistory(10_000, per_symbol=10_000, max_age_ns=10**12)
    before = Subscriber(1, json=json_mode)
    hub.subscribe(before, "trades", [TSLA])
    trade(books, TSLA, 5)
    got_before = live(hub, before)
    seen = before.trade_seen[TSLA]
    hub.remove(before)  # the client is away
    for _ in range(3):
        trade(books, TSLA, burst)  # late flushes while nobody watches: the history keeps them
        hub.flush(NOW, send_time_ns=NOW)
    after = Subscriber(2, json=json_mode)
    got = resume(hub, after, seen)
    trade(books, TSLA, burst)  # the print that came in before the resume was answered, not flushed yet
    got += live(hub, after)
    for _ in range(2):
        trade(books, TSLA, burst)  # late flushes after the resume
        got += live(hub, after)
    last = int(books.trade_seq[TSLA])
    assert got_before == [1, 2, 3, 4, 5] and seen == 5
    assert got == list(range(seen + 1, last + 1))
    assert after.trade_seen[TSLA] == last  # what its next resume token names


def test_a_burst_goes_out_in_frames_of_bounded_size() -> None:
    books = make_books()
    hub = Hub(books, 16)
    a, b = Subscriber(1), Subscriber(2, json=True)
    for s in (a, b):
        hub.subscribe(s, "trades", [TSLA])
        hub.subscribe(s, "quotes", [1])
    trade(books, TSLA, 2 * TRADE_FRAME_PRINTS + 1)
    frames = dict(hub.flush(NOW))
    for s in (a, b):
        assert len(frames[s]) == 3
        assert [len(trade_seqs([f])) for f in frames[s]] == [TRADE_FRAME_PRINTS, TRADE_FRAME_PRINTS, 1]
        assert trade_seqs(frames[s]) == list(range(1, 2 * TRADE_FRAME_PRINTS + 2))


def test_an_edge_learning_its_feed_session_late_does_not_send_the_replay_tail_again() -> None:
    """A Redis edge's hub starts before the publisher's marks are read, and on a node whose clients watched
    nothing its first flush with prints came only after a resume had set its floor: the session switch then
    wiped the floor, and live delivery sent the replay's tail again (tests/e2e/test_node_failover.py: 848..854
    twice, right at the verdict)."""
    books = make_books()
    hub = Hub(books, 16)
    hub.history = TradeHistory(10_000, per_symbol=10_000, max_age_ns=10**12)
    books.session_epoch += 1  # the edge reads the publisher's marks: no print flushed since
    hub.flush(NOW, send_time_ns=NOW)  # a quiet flush: the node watches nothing
    trade(books, TSLA, 7)  # heard since the edge followed TSLA for this resume, not flushed yet
    sub = Subscriber(1)
    hub.subscribe(sub, "trades", [TSLA])
    hub.sync_epoch()  # as the server does before it sets a floor
    # the replay came from the publisher's stream (1..7), so live delivery is held back to 7
    sub.trade_seen[TSLA] = sub.trade_floor[TSLA] = 7
    trade(books, TSLA, 3)
    assert live(hub, sub) == [8, 9, 10]
