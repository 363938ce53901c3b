"""/livez and /readyz: the pure judges (feed state and silence over time, the checks' verdict) and a real node whose
readiness follows its feed: ready in sync, not ready naming ``feed`` once a hole is given up on, ``books`` once the
feed falls silent, ``redis_orders`` when the Redis it serves orders from is gone."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from ingest import itch, moldudp64
from ingest.messages import AddOrder
from tests.conftest import WAIT, PrivateRedis, directory, eventually, free_port
from tickfan.health import CheckResult, FeedReadiness, Health
from tickfan.httpserver import SideServer
from tickfan.node import Node, NodeConfig

SESSION = "TICKFAN001"


def test_a_feed_is_ready_in_sync_and_while_a_gap_recovers_within_its_bound() -> None:
    judge = FeedReadiness(max_recovering=5.0, max_silence=3.0, now=100.0)
    assert judge.observe_state("in_sync", 100.0) == CheckResult(True, "in_sync")
    assert judge.observe_state("recovering", 101.0).ok
    assert judge.observe_state("recovering", 105.9).ok
    late = judge.observe_state("recovering", 106.5)
    assert not late.ok and "recovering for 5.5 s" in late.detail
    assert judge.observe_state("in_sync", 107.0).ok  # recovered: the clock starts again at the next gap
    assert judge.observe_state("recovering", 200.0).ok
    assert judge.observe_state("stale", 200.1) == CheckResult(False, "stale")


def test_books_are_stale_when_the_feed_falls_silent_counted_from_the_start() -> None:
    judge = FeedReadiness(max_silence=3.0, now=10.0)
    assert judge.observe_traffic(0, 12.0).ok  # nothing heard yet, but within the bound from the start
    assert not judge.observe_traffic(0, 13.5).ok  # a feed that never speaks is not ready
    assert judge.observe_traffic(7, 14.0).ok  # a heartbeat
    assert judge.observe_traffic(7, 16.9).ok
    silent = judge.observe_traffic(7, 17.5)
    assert not silent.ok and "books stale" in silent.detail


def test_readiness_names_every_failing_check_a_slow_or_raising_probe_fails_and_draining_is_one() -> None:
    async def main() -> None:
        health = Health(timeout=0.2)
        health.add_sync("good", lambda: CheckResult(True, "fine"))

        async def slow() -> CheckResult:
            await asyncio.sleep(5)
            return CheckResult(True, "never")

        async def broken() -> CheckResult:
            raise ConnectionRefusedError("connection refused")
        health.add("slow", slow)
        health.add("broken", broken)
        status, body = await health.readiness()
        assert status == 503 and body["status"] == "not_ready" and body["failing"] == ["slow", "broken"]
        assert body["checks"]["good"] == {"ok": True, "detail": "fine"}
        assert "no answer within 0.2 s" in body["checks"]["slow"]["detail"]
        assert "ConnectionRefusedError" in body["checks"]["broken"]["detail"]

        calm = Health()
        calm.add_sync("good", lambda: CheckResult(True, "fine"))
        assert (await calm.readiness())[0] == 200
        calm.draining = True
        status, body = await calm.readiness()
        assert status == 503 and body["failing"] == ["draining"]
    asyncio.run(main())


def test_a_side_server_serves_livez_and_readyz_and_routes_added_later() -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def main() -> None:
        health = Health()
        ok = True
        health.add_sync("thing", lambda: CheckResult(ok, "up" if ok else "down"))
        side = SideServer("127.0.0.1", 0, health.routes())
        await side.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{side.port}") as http:
                live = await http.get("/livez")
                assert live.status_code == 200 and live.json()["status"] == "alive"
                assert (await http.get("/readyz")).json()["status"] == "ready"
                ok = False
                r = await http.get("/readyz")
                assert r.status_code == 503 and r.json()["failing"] == ["thing"]
                assert (await http.get("/metrics")).status_code == 404

                async def metrics(request: object) -> PlainTextResponse:
                    return PlainTextResponse("x 1\n")
                side.routes.append(Route("/metrics", metrics))
                assert (await http.get("/metrics")).text == "x 1\n"
        finally:
            await side.close()
    asyncio.run(main())


def test_a_nodes_readiness_follows_its_feed_and_its_redis(private_redis: PrivateRedis) -> None:
    async def main() -> None:
        http, ws = free_port(), free_port()
        feed = free_port(socket.SOCK_DGRAM)
        # no rewinder: a hole can only be given up on, after the recovery timeout
        node = Node(NodeConfig(feeds=[("127.0.0.1", feed)], http=("127.0.0.1", http), ws=("127.0.0.1", ws),
                               session=SESSION, recovery_timeout=0.3, ready_max_silence=1.0,
                               orders_redis=private_redis.url))
        await node.start()
        line = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seq = 1

        def send(*messages: bytes, at: int | None = None) -> None:
            nonlocal seq
            seq = at if at is not None else seq
            line.sendto(moldudp64.encode_packet(SESSION, seq, list(messages)), ("127.0.0.1", feed))
            seq += len(messages)

        async def readyz(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
            r = await client.get("/readyz")
            return r.status_code, r.json()

        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", timeout=WAIT) as client:
                assert (await client.get("/livez")).status_code == 200
                assert (await client.get("/healthz")).json()["status"] == "ok"  # as before
                send(itch.encode(directory(1, "AAPL")), itch.encode(AddOrder(1, 0, 2, 1, "B", 100, "AAPL",
                                                                            1_000_000)))

                async def ready() -> bool:
                    line.sendto(moldudp64.heartbeat(SESSION, seq), ("127.0.0.1", feed))  # the feed speaks
                    status, body = await readyz(client)
                    return status == 200 and body["status"] == "ready"
                await eventually(ready, what="the node ready once the feed speaks")
                _, body = await readyz(client)
                assert set(body["checks"]) == {"feed", "books", "redis_orders"}

                # silence: no packet, no heartbeat for longer than --ready-max-silence
                async def names(*failing: str) -> bool:
                    status, body = await readyz(client)
                    return status == 503 and body.get("failing") == list(failing)
                await eventually(lambda: names("books"), what="503 naming books once the feed is silent")

                # a hole never recovered: after the recovery timeout the books are stale
                send(itch.encode(AddOrder(1, 0, 3, 2, "B", 100, "AAPL", 1_010_000)), at=seq + 7)
                await eventually(lambda: names("feed", "books"), what="503 naming the stale feed")

                private_redis.stop()
                _, body = await readyz(client)
                assert "redis_orders" in body["failing"]
        finally:
            line.close()
            await node.close()

    asyncio.run(main())


def test_the_market_maker_serves_readiness_on_http_and_exits_on_sigterm() -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import wait_until

    http, fix = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickfan", "market-maker", "--listen", f"127.0.0.1:{fix}", "--http",
         f"127.0.0.1:{http}", "--static-quotes", "AAPL=189.25x300/189.26x200", "--status-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        def ready() -> bool:
            assert proc.poll() is None, proc.communicate()
            try:
                return httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(ready, what="the market maker ready")
        body = httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=5).json()
        assert body["checks"]["quotes"]["ok"] and "static quotes" in body["checks"]["quotes"]["detail"]
        proc.terminate()
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert f"health on http://127.0.0.1:{http}/livez" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
