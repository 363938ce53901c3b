"""A fan-out node killed under its clients: they reconnect to another node and resume, missing nothing unreported.

Real processes: a publisher (`tickfan demo --redis` on a private Redis) and two edges (`tickfan node --from-redis`)
sharing `TICKFAN_RESUME_SECRET`. A client on edge A watches quotes and trades; A is SIGKILLed (no close frame,
no goodbye); the client reconnects to edge B with its last resume token and gets the snapshots, the prints it
missed and a `complete` verdict per symbol, then live prints: what it got from A and from B together is every
trade_seq from its first to its last, each exactly once after the overlap the token's age explains.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis
import websockets

from tests.conftest import WAIT, PrivateRedis, wait_until
from tests.e2e.conftest import Launch
from tickfan_proto import stream_pb2 as pb
from vocab.keys import SYMBOLS, quote_key

pytestmark = pytest.mark.timeout(180)
SYMBOLS_WATCHED = ("TSLA", "NVDA")  # the demo's hot tickers: prints every few milliseconds
SECRET = {"TICKFAN_RESUME_SECRET": "one-secret-for-every-edge"}


class Session:
    """What one connection received: prints per symbol (trade_seq), snapshots, verdicts, the newest token."""

    def __init__(self) -> None:
        self.trades: dict[str, list[int]] = {s: [] for s in SYMBOLS_WATCHED}
        self.snapshots: set[str] = set()
        self.verdicts: dict[str, pb.Recovered] = {}
        self.token = ""
        self.token_after: dict[str, int] = {}  # per symbol, the last trade_seq received when the token came
        self.verdict_at: dict[str, int] = {}  # per symbol, how many prints had come when its verdict came

    def take(self, msg: pb.ServerMessage) -> None:
        kind = msg.WhichOneof("kind")
        if kind == "trades":
            for t in msg.trades.trades:
                self.trades[t.symbol].append(t.trade_seq)
        elif kind == "snapshot":
            self.snapshots.update(q.symbol for q in msg.snapshot.quotes)
        elif kind == "recovered":
            self.verdicts[msg.recovered.symbol] = msg.recovered
            self.verdict_at[msg.recovered.symbol] = len(self.trades.get(msg.recovered.symbol, []))
        elif kind in ("heartbeat", "subscribed"):
            token = msg.heartbeat.resume_token if kind == "heartbeat" else msg.subscribed.resume_token
            if token:
                self.token = token
                self.token_after = {s: (seqs[-1] if seqs else 0) for s, seqs in self.trades.items()}


async def read_until(ws: websockets.ClientConnection, got: Session, done: Callable[[], bool],
                     timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        assert left > 0, f"timed out: {len(got.trades['TSLA'])} TSLA prints, verdicts {list(got.verdicts)}"
        raw = await asyncio.wait_for(ws.recv(), left)
        assert isinstance(raw, bytes)
        got.take(pb.ServerMessage.FromString(raw))


def test_a_killed_edge_node_clients_resume_on_another_with_nothing_missed(
        launch_demo: Launch, private_redis: PrivateRedis) -> None:
    url = private_redis.url
    r = redis.Redis.from_url(url)
    launch_demo("--rate", "2000", "--duration", "170", "--no-rewinder", "--redis", url, symbols=50, env=SECRET)
    wait_until(lambda: r.hlen(SYMBOLS) >= 50, 60, "the symbol directory in Redis")
    wait_until(lambda: all(r.hget(quote_key(s), "bid_price") for s in SYMBOLS_WATCHED), 60, "the hot quotes")
    edge_a = launch_demo("--from-redis", url, command="node", symbols=50, env=SECRET)
    edge_b = launch_demo("--from-redis", url, command="node", symbols=50, env=SECRET)

    async def main() -> tuple[Session, Session]:
        before, after = Session(), Session()
        ws = await websockets.connect(edge_a.ws)
        await ws.send(pb.ClientMessage(subscribe=pb.Subscribe(
            symbols=SYMBOLS_WATCHED, channels=["quotes", "trades"])).SerializeToString())
        # prints from A, then a heartbeat's token naming them (heartbeats come every 5 s)
        await read_until(ws, before, lambda: all(len(v) >= 3 for v in before.trades.values()))
        await read_until(ws, before, lambda: all(before.token_after.get(s, 0) > 0 for s in SYMBOLS_WATCHED))
        edge_a.proc.kill()  # SIGKILL: the node vanishes mid-stream
        try:  # whatever A had written before it died is still delivered; then the socket breaks
            await read_until(ws, before, lambda: False, timeout=WAIT)
        except (websockets.ConnectionClosed, AssertionError, OSError):
            pass
        assert edge_a.proc.wait(timeout=WAIT) != 0
        await asyncio.sleep(1.0)  # the market moves on while the client is away
        async with websockets.connect(edge_b.ws) as ws_b:
            await ws_b.send(pb.ClientMessage(subscribe=pb.Subscribe(resume_token=before.token)).SerializeToString())
            await read_until(ws_b, after, lambda: set(after.verdicts) == set(SYMBOLS_WATCHED))
            # live prints after the verdicts, still consecutive
            marks = {s: len(after.trades[s]) for s in SYMBOLS_WATCHED}
            await read_until(ws_b, after, lambda: all(len(after.trades[s]) >= marks[s] + 3 for s in SYMBOLS_WATCHED))
        return before, after

    before, after = asyncio.run(main())
    assert after.snapshots == set(SYMBOLS_WATCHED), "fresh quote snapshots on the surviving node"
    for sym in SYMBOLS_WATCHED:
        verdict = after.verdicts[sym]
        assert (verdict.verdict, verdict.epoch_changed) == ("complete", True), verdict
        a, b = before.trades[sym], after.trades[sym]
        assert a == list(range(a[0], a[0] + len(a))), f"{sym}: a gap on node A"
        # B replays from the token's position (as old as its heartbeat): the overlap is what A sent after it
        assert b[0] == before.token_after[sym] + 1, f"{sym}: B began at {b[0]}, token named {before.token_after[sym]}"
        assert b[-1] > a[-1], f"{sym}: nothing after the kill reached the client"
    wait_until(lambda: edge_b.proc.poll() is None, 1, "node B still serving")
    # no skip and no repeat where the replay meets the live prints: B reads the symbol's stream only once Redis
    # confirmed its subscription to the symbol's partition, and the publisher writes a print's history before
    # publishing it (once seen: 900..909 missing after a `complete` verdict, the stream read before B's SSUBSCRIBE
    # took effect)
    for sym in SYMBOLS_WATCHED:
        seqs = after.trades[sym]
        jumps = [(i, seqs[i - 1], seqs[i]) for i in range(1, len(seqs)) if seqs[i] != seqs[i - 1] + 1]
        assert not jumps, f"{sym}: (index, before, after) {jumps}; verdicts after {after.verdict_at} prints"
