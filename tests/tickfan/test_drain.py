"""Rolling deploys, with real processes and signals: a node sent SIGTERM closes its WebSockets with 1001 (going away,
so clients reconnect elsewhere), accepts no new ones, and exits 0; and the quick start on a machine without
PostgreSQL or Redis: the demo runs the market data alone and says in one line why trading is off."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from tests.conftest import WAIT, free_port
from tests.e2e.conftest import Launch, launch_demo  # noqa: F401  (the fixture)
from tests.fanout.conftest import subscribe, until


def test_sigterm_closes_every_websocket_with_going_away_and_the_node_exits(launch_demo: Launch) -> None:  # noqa: F811
    demo = launch_demo()
    ready = httpx.get(f"{demo.http}/readyz", timeout=WAIT)
    assert ready.status_code in (200, 503) and "feed" in ready.json()["checks"]
    assert httpx.get(f"{demo.http}/livez", timeout=WAIT).status_code == 200

    async def main() -> None:
        clients = [await websockets.connect(demo.ws) for _ in range(3)]
        for ws in clients:
            await ws.send(subscribe("AAPL"))
            await until(ws, "subscribed")
        demo.proc.terminate()  # SIGTERM, as Kubernetes sends at a rolling deploy
        for ws in clients:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # going away
        # no new connection is accepted once the close began
        with pytest.raises((OSError, websockets.exceptions.InvalidHandshake, TimeoutError)):
            async with websockets.connect(demo.ws, open_timeout=5):
                pass
    asyncio.run(main())
    # it exits by itself: a second SIGTERM (demo.stop) would only race the interpreter's own exit
    _, err = demo.proc.communicate(timeout=WAIT)
    assert demo.proc.returncode == 0, err


def test_the_demo_without_postgres_or_redis_runs_market_data_and_says_why_trading_is_off(
        launch_demo: Launch) -> None:  # noqa: F811
    # nothing listens on these ports: as on a machine where PostgreSQL and Redis cannot be had
    nowhere_pg, nowhere_redis = free_port(), free_port()
    demo = launch_demo("--db", f"postgresql://postgres@127.0.0.1:{nowhere_pg}/tickfan_0",
                       "--trading-redis", f"redis://127.0.0.1:{nowhere_redis}/0", trading=True)
    quotes = httpx.get(f"{demo.http}/v1/quotes?symbols=AAPL", timeout=WAIT)
    assert quotes.status_code == 200  # the market data runs
    assert httpx.get(f"{demo.http}/v1/orders", timeout=WAIT).status_code == 404  # no order API
    ready = httpx.get(f"{demo.http}/readyz", timeout=WAIT).json()
    assert "database" not in ready["checks"] and "redis_orders" not in ready["checks"]
    code, out, err = demo.stop(timeout=WAIT)
    assert code == 0, err
    said = [line for line in err.splitlines() if "trading is off" in line]
    assert len(said) == 1, err
    assert f"PostgreSQL at postgresql://postgres@127.0.0.1:{nowhere_pg}/tickfan_0 is unreachable" in said[0]
    assert "make services" in said[0] and "--no-trading" in said[0]
    assert "order API" not in out


def test_the_demo_says_when_redis_alone_is_missing(launch_demo: Launch) -> None:  # noqa: F811
    nowhere = free_port()
    demo = launch_demo("--trading-redis", f"redis://127.0.0.1:{nowhere}/0", trading=True)
    code, _, err = demo.stop(timeout=WAIT)
    assert code == 0, err
    assert f"trading is off: Redis at redis://127.0.0.1:{nowhere}/0 is unreachable" in err
