"""A Redis Cluster master killed while clients watch: `tickfan demo --redis <cluster>` publishes, `tickfan node
--from-redis <cluster>` serves a WebSocket client watching symbols on every master's partitions. The dead
master's symbols turn `stale` in the client's heartbeats; once its replica is promoted the edge resubscribes
there and they are fresh again (in_sync, new quote versions); the other masters' symbols never stop; nothing
crashes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest
import websockets
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import LocalCluster, wait_until
from tests.e2e.conftest import Launch
from tickfan_proto import stream_pb2 as pb
from vocab.keys import SYMBOLS, quote_key, quotes_channel
from vocab.redisconn import cluster_nodes

pytestmark = pytest.mark.timeout(240)  # two processes to start on a loaded machine; the watching itself < 90 s
PHASE = 20.0  # seconds any one of the client's four phases may take before the test fails


@dataclass
class Watch:
    """What the client has seen, per symbol."""
    seq: dict[str, int] = field(default_factory=dict)
    updated: dict[str, float] = field(default_factory=dict)   # monotonic time of the last quote update
    state: dict[str, str] = field(default_factory=dict)       # liveness of the last heartbeat naming it
    stale_seen: dict[str, float] = field(default_factory=dict)
    heartbeats: int = 0

    def take(self, msg: pb.ServerMessage) -> None:
        kind = msg.WhichOneof("kind")
        now = time.monotonic()
        if kind in ("snapshot", "quotes"):
            for q in (msg.snapshot.quotes if kind == "snapshot" else msg.quotes.quotes):
                assert q.seq >= self.seq.get(q.symbol, 0), f"{q.symbol}'s version went backwards"
                if q.seq > self.seq.get(q.symbol, 0):
                    self.updated[q.symbol] = now
                self.seq[q.symbol] = q.seq
        elif kind == "heartbeat":
            self.heartbeats += 1
            for live in msg.heartbeat.symbols:
                self.state[live.symbol] = live.feed_state
                if live.feed_state == "stale":
                    self.stale_seen.setdefault(live.symbol, now)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def by_master(cluster: LocalCluster, per_master: int) -> dict[int, list[str]]:
    """Active tickers of the demo (their quote hashes have a bid) whose partition's channel is on each master."""
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(cluster.url)])
    try:
        out: dict[int, list[str]] = {port: [] for port in cluster.masters()}
        for raw_sym, raw in sorted(client.hgetall(SYMBOLS).items()):
            sym, part = _text(raw_sym), int(_text(raw).partition(":")[2])
            node = client.get_node_from_key(quotes_channel(part))
            if len(out[node.port]) < per_master and client.hget(quote_key(sym), "bid_price"):
                out[node.port].append(sym)
        return out
    finally:
        client.close()


def test_a_killed_master_turns_its_symbols_stale_then_fresh_again(redis_cluster: LocalCluster,
                                                                   launch_demo: Launch) -> None:
    cluster = redis_cluster
    launch_demo("--rate", "2000", "--duration", "200", "--no-rewinder", "--redis", cluster.url, symbols=200)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(cluster.url)])
    try:
        wait_until(lambda: client.hlen(SYMBOLS) >= 200, 60, "the symbol directory in the cluster")
    finally:
        client.close()
    edge = launch_demo("--from-redis", cluster.url, "--heartbeat-interval", "0.3", command="node", symbols=200)
    wait_until(lambda: all(len(v) >= 2 for v in by_master(cluster, 2).values()), 30, "active symbols on every master")
    watched = by_master(cluster, 2)
    victim = min(watched)
    doomed = set(watched[victim])
    symbols = sorted(sum(watched.values(), []))
    survivors = set(symbols) - doomed
    seen = Watch()

    async def until(check: object, what: str, timeout: float = PHASE) -> None:
        end = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < end, f"not within {timeout:.0f} s: {what}; {seen}"
            assert edge.proc.poll() is None, f"the edge exited: {edge.proc.communicate()}"
            await asyncio.sleep(0.05)

    async def promoted() -> float:
        """When the cluster itself says a replica took the dead master's slots (three masters again)."""
        while True:
            masters = await asyncio.to_thread(cluster.masters)
            if len(masters) == 3 and victim not in masters:
                return time.monotonic()
            await asyncio.sleep(0.05)

    async def watch() -> tuple[float, float, float]:
        async with websockets.connect(edge.ws) as conn:
            await conn.send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=symbols, channels=["quotes"]))
                            .SerializeToString())

            async def read() -> None:
                async for raw in conn:
                    assert isinstance(raw, bytes)
                    seen.take(pb.ServerMessage.FromString(raw))

            reader = asyncio.create_task(read())
            try:
                start = time.monotonic()
                await until(lambda: all(seen.updated.get(s, 0) > start for s in symbols)
                            and all(seen.state.get(s) == "in_sync" for s in symbols), "every symbol live")
                killed = time.monotonic()
                cluster.kill_master(victim)
                promotion = asyncio.create_task(promoted())
                await until(lambda: doomed <= set(seen.stale_seen), "the dead master's symbols stale")
                # the other masters' partitions go on while the dead one is silent
                quiet_from = time.monotonic()
                await until(lambda: all(seen.updated.get(s, 0) > quiet_from for s in survivors),
                            "the other masters' symbols updated meanwhile")
                assert not survivors & set(seen.stale_seen), "a live master's symbol was called stale"

                def fresh() -> bool:
                    return all(seen.state.get(s) == "in_sync" and seen.updated.get(s, 0) > seen.stale_seen[s]
                               for s in doomed)

                await until(fresh, "fresh again on the promoted replica")
                took = time.monotonic() - killed
                assert not reader.done(), reader
                promoted_at = await asyncio.wait_for(promotion, PHASE)
                return max(seen.stale_seen[s] for s in doomed) - killed, promoted_at - killed, took
            finally:
                reader.cancel()

    stale_after, promoted_after, took = asyncio.run(watch())
    assert victim not in cluster.masters()  # its replica took over
    print(f"failover: kill -> the edge's client saw stale after {stale_after:.2f} s; the replica promoted after "
          f"{promoted_after:.2f} s; the client fresh again after {took:.2f} s")
    assert edge.proc.poll() is None
