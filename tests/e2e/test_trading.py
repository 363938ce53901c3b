"""The trading flow end to end through `tickfan demo`: `tickfan trade` places a buy over HTTP and prints its
updates as they arrive on the WebSocket `orders` channel, through the ledger, the outbox, Redis Streams, an
execution worker and the FIX market maker, all real processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from order_api.db import Ledger
from tests.conftest import PrivateRedis, free_port, wait_until
from tests.e2e.conftest import Launch
from tests.order_api.conftest import drop_databases
from tickfan_proto import stream_pb2
from vocab.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
SERVER = "postgresql://postgres@127.0.0.1:5432"
# named by TICKFAN_TEST_DB when set, so two checkouts can run this side by side on one server
_PREFIX = f"{os.environ['TICKFAN_TEST_DB']}_e2e" if os.environ.get("TICKFAN_TEST_DB") else "tickfan_e2e"
DSNS = [f"{SERVER}/{_PREFIX}_0", f"{SERVER}/{_PREFIX}_1"]


@pytest.fixture(scope="module")
def demo(launch_module_demo: Launch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    asyncio.run(drop_databases(DSNS))
    # As on a fresh machine: no TICKFAN_JWT_SECRET, so the demo makes this machine's development key (in a state
    # directory of our own) and `tickfan trade` finds it there.
    state = tmp_path_factory.mktemp("state")
    # a Redis of its own: execution streams on a shared one would be claimed by another run's workers
    with PrivateRedis() as redis:
        env = {"TICKFAN_JWT_SECRET": "", "XDG_STATE_HOME": str(state)}
        control = control_ports()
        d = launch_module_demo("--market-maker", f"127.0.0.1:{free_port()}", "--trading-redis", redis.url,
                               "--control", f"127.0.0.1:{control}",
                               *(a for dsn in DSNS for a in ("--db", dsn)), "--rate", "2000", "--duration", "120",
                               "--fanout-workers", "2", trading=True, env=env)
        key_file = state / "tickfan" / "dev-jwt-secret"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # readable by its owner only
        yield {"proc": d.proc, "http": d.http, "ws": d.ws, "env": {**os.environ, **env},
               "key": key_file.read_text().strip(), "feed_control": f"http://127.0.0.1:{control}",
               "mm_control": f"http://127.0.0.1:{control + 1}"}
        d.stop()


def control_ports() -> int:
    """A free port whose successor is free too: the demo's simulator control, and its market maker's."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def tradable(http: str) -> str:
    """A hot name not halted right now (the simulator halts the odd symbol for a few seconds)."""
    quotes = httpx.get(f"{http}/v1/quotes", params={"symbols": "AAPL,MSFT,NVDA,TSLA,AMZN"}, timeout=5).json()
    return str(next(q["symbol"] for q in quotes["quotes"] if not q["halted"] and not q["stale"]))


def test_a_buy_and_its_fill_arrive_on_the_websocket(demo: dict[str, Any]) -> None:
    symbol = tradable(demo["http"])
    out = subprocess.run(
        [sys.executable, "-m", "tickfan", "trade", "alice", "buy", symbol, "10", "--api", demo["http"],
         "--stream", demo["ws"], "--timeout", "40"],
        capture_output=True, text=True, cwd=ROOT, env=demo["env"], timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("accepted") and f"buy 10 {symbol}" in lines[0]
    # every later line came from the WebSocket `orders` channel
    assert any(line.startswith("routed") for line in lines[1:]), out.stdout
    assert lines[-1].startswith("filled") and "filled 10/10" in lines[-1], out.stdout

    headers = {"authorization": f"Bearer {mint_token('alice', key=demo['key'])}"}
    portfolio = httpx.get(f"{demo['http']}/v1/portfolio", headers=headers, timeout=5).json()
    assert [(h["symbol"], h["qty"]) for h in portfolio["holdings"]] == [(symbol, "10")]
    spent = 100_000 * 10_000 - int(portfolio["cash"].replace(".", ""))
    assert spent == int(portfolio["holdings"][0]["cost_basis"].replace(".", "")) > 0


def trade(demo: dict[str, Any], *args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "tickfan", "trade", *args, "--api", demo["http"], "--stream", demo["ws"],
         "--timeout", "40"], capture_output=True, text=True, cwd=ROOT, env=demo["env"], timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.splitlines()


def test_a_fractional_and_a_notional_buy_fill_through_the_stack(demo: dict[str, Any]) -> None:
    """Half a share, then $10 worth: API -> ledger -> outbox -> worker -> FIX market maker -> fills on the
    WebSocket (the exact quantities of OrderUpdate fields 15-17), and the books balance with the house's fractions."""
    symbol = tradable(demo["http"])
    lines = trade(demo, "bob", "buy", symbol, "0.5")
    assert lines[0].startswith("accepted") and f"buy 0.5 {symbol}" in lines[0], lines
    assert lines[-1].startswith("filled") and "filled 0.5/0.5" in lines[-1], lines
    lines = trade(demo, "bob", "buy", symbol, "--notional", "10")
    assert lines[0].startswith("accepted") and "($10.0000)" in lines[0], lines
    assert lines[-1].startswith("filled"), lines
    headers = {"authorization": f"Bearer {mint_token('bob', key=demo['key'])}"}
    orders = httpx.get(f"{demo['http']}/v1/orders", headers=headers, timeout=5).json()["orders"]
    notional, half = orders[0], orders[1]
    assert half["qty"] == half["filled_qty"] == "0.5" and half["notional"] is None
    assert notional["notional"] == "10.0000" and notional["status"] == "filled"
    bought = Decimal(notional["filled_qty"])
    assert 0 < bought * Decimal(notional["avg_fill_price"]) <= Decimal("10.0001")  # avg is rounded to 1/10,000
    portfolio = httpx.get(f"{demo['http']}/v1/portfolio", headers=headers, timeout=5).json()
    assert [(h["symbol"], Decimal(h["qty"])) for h in portfolio["holdings"]] == [(symbol, Decimal("0.5") + bought)]
    spent = 100_000 * 10_000 - int(portfolio["cash"].replace(".", ""))
    assert spent == int(portfolio["holdings"][0]["cost_basis"].replace(".", "")) and portfolio["cash_held"] == "0.0000"

    async def books() -> tuple[list[str], dict[str, int]]:
        ledger = await Ledger.connect(DSNS, max_size=2)
        try:
            return await ledger.check(), await ledger.house()
        finally:
            await ledger.close()

    problems, house = asyncio.run(books())
    assert problems == []
    assert house[symbol] > 0  # the broker keeps the other part of the whole shares the venue traded


def test_stops_triggered_by_the_simulated_feed_fill_through_the_stack(demo: dict[str, Any]) -> None:
    """A buy stop below the ask triggers on the node's books at the watcher's next look; a trailing buy one unit
    (1/10,000 $) behind the lowest ask triggers on the feed's first uptick. Each then routes and fills, the
    trigger on the WebSocket, and the books balance."""
    symbol = tradable(demo["http"])
    quote = httpx.get(f"{demo['http']}/v1/quotes", params={"symbols": symbol}, timeout=5).json()["quotes"][0]
    stop = (Decimal(quote["ask_price"]) * Decimal("0.97")).quantize(Decimal("0.01"))
    lines = trade(demo, "alice", "buy", symbol, "2", "--stop", str(stop))
    assert lines[0].startswith("pending_trigger") and f"stop {stop:.4f}" in lines[0], lines
    assert any(line.startswith("accepted") and "triggered at" in line for line in lines), lines
    assert lines[-1].startswith("filled") and "filled 2/2" in lines[-1], lines
    lines = trade(demo, "alice", "buy", symbol, "1", "--trail-price", "0.0001")
    assert lines[0].startswith("pending_trigger"), lines
    assert lines[-1].startswith("filled"), lines
    headers = {"authorization": f"Bearer {mint_token('alice', key=demo['key'])}"}
    orders = httpx.get(f"{demo['http']}/v1/orders", headers=headers, timeout=5).json()["orders"]
    trailing, stopped = orders[0], orders[1]
    assert stopped["type"] == "stop" and Decimal(stopped["trigger_price"]) >= stop and stopped["triggered_at"]
    assert trailing["type"] == "trailing_stop" and trailing["trigger_price"] and trailing["triggered_at"]

    async def problems() -> list[str]:
        ledger = await Ledger.connect(DSNS, max_size=2)
        try:
            return await ledger.check()
        finally:
            await ledger.close()

    assert asyncio.run(problems()) == []


def test_orders_channel_is_refused_without_a_token_and_prices_still_flow(demo: dict[str, Any]) -> None:
    async def go() -> None:
        async with websockets.connect(demo["ws"]) as ws:
            sub = stream_pb2.ClientMessage()
            sub.subscribe.channels.append("orders")
            await ws.send(sub.SerializeToString())
            prices = stream_pb2.ClientMessage()
            prices.subscribe.symbols.append("AAPL")
            await ws.send(prices.SerializeToString())
            kinds = []
            for _ in range(20):
                raw = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(raw, bytes)
                msg = stream_pb2.ServerMessage.FromString(raw)
                kinds.append(msg.WhichOneof("kind"))
                if msg.WhichOneof("kind") == "error":
                    assert msg.error.code == "unauthenticated"
                if "error" in kinds and "snapshot" in kinds:
                    break
            assert "error" in kinds and "snapshot" in kinds
    asyncio.run(go())


def test_every_fanout_worker_serves_the_orders_channel(demo: dict[str, Any]) -> None:
    """The demo runs two fan-out processes on one port: whichever takes a connection serves `orders` (an extra
    worker once answered orders_unavailable, so `tickfan trade` on it saw its order but none of its updates)."""
    headers = {"authorization": f"Bearer {mint_token('bob', key=demo['key'])}"}

    async def one() -> tuple[list[str], str]:
        async with websockets.connect(demo["ws"], additional_headers=headers) as ws:
            sub = stream_pb2.ClientMessage()
            sub.subscribe.channels.append("orders")
            await ws.send(sub.SerializeToString())
            while True:
                raw = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(raw, bytes)
                msg = stream_pb2.ServerMessage.FromString(raw)
                if msg.WhichOneof("kind") == "error":
                    return [], msg.error.code
                if msg.WhichOneof("kind") == "subscribed":
                    return list(msg.subscribed.channels), ""

    async def many() -> list[tuple[list[str], str]]:
        return list(await asyncio.gather(*(one() for _ in range(12))))

    answers = asyncio.run(many())
    assert all("orders" in channels and not error for channels, error in answers), answers
    workers = subprocess.run(["pgrep", "-P", str(demo["proc"].pid), "-f", "tickfan node --attach"], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 1, "the demo runs one extra fan-out worker beside the node"


def test_the_node_exports_the_scheduled_ledger_check(demo: dict[str, Any]) -> None:
    """The demo's node runs Ledger.check() on a schedule (at once, then every 60 s) and shows it on /metrics."""
    def scraped() -> dict[str, float]:
        text = httpx.get(f"{demo['http']}/metrics", timeout=5).text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

    wait_until(lambda: "tickfan_ledger_check_last_success_timestamp_seconds" in scraped(), what="a ledger check")
    assert scraped()["tickfan_ledger_check_problems"] == 0


def test_a_browser_page_of_the_demo_gets_a_dev_token_and_a_foreign_one_gets_nothing(demo: dict[str, Any]) -> None:
    """Issue 12: the demo signs with the development key, so its user picker's endpoint exists; its own pages
    (http://127.0.0.1:PORT) may use it and the stream, another site's may not."""
    own = demo["http"]
    page = httpx.get(f"{own}/", timeout=5)
    assert page.status_code == 200 and "unsafe-inline" not in page.headers["content-security-policy"]
    r = httpx.post(f"{own}/v1/dev/token", json={"user": "alice"}, headers={"Origin": own}, timeout=5)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == own, r.text
    token = r.json()["token"]
    portfolio = httpx.get(f"{own}/v1/portfolio", headers={"authorization": f"Bearer {token}"}, timeout=5)
    assert portfolio.status_code == 200 and portfolio.json()["user_id"] == "alice"
    foreign = httpx.post(f"{own}/v1/dev/token", json={"user": "alice"}, headers={"Origin": "https://evil.example"},
                         timeout=5)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    assert httpx.post(f"{own}/v1/dev/token", json={"user": "mallory"}, timeout=5).status_code == 403

    async def stream() -> None:
        async with websockets.connect(demo["ws"], origin=websockets.Origin(own)):
            pass
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(demo["ws"], origin=websockets.Origin("https://evil.example")):
                pass
        assert err.value.response.status_code == 403

    asyncio.run(stream())


def venue(demo: dict[str, Any], event: str) -> int:
    """``tickfan venue EVENT`` against the demo's simulator and market maker: the market maker's report count."""
    out = subprocess.run([sys.executable, "-m", "tickfan", "venue", event, "--feed-control", demo["feed_control"],
                          "--mm-control", demo["mm_control"]], capture_output=True, text=True, cwd=ROOT,
                         env=demo["env"], timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith(demo["mm_control"]))
    return int(orjson.loads(line.split(": ", 1)[1])["reports"])


def test_the_venue_day_on_demand_gtc_survives_the_rollover_and_the_crosses_fill(demo: dict[str, Any]) -> None:
    """Issue 15: `tickfan venue` drives the demo's day. The rollover expires a day order (its cash released) and
    keeps a gtc one; the feed's end of system hours closes the market; pre-market takes an opg order, which the
    opening cross fills; a cls order fills in the closing cross; the market is left open."""
    http, h = demo["http"], {"authorization": f"Bearer {mint_token('bob', key=demo['key'])}"}
    symbol = tradable(http)
    bid = httpx.get(f"{http}/v1/quotes", params={"symbols": symbol}, timeout=5).json()["quotes"][0]["bid_price"]
    limit = str((Decimal(bid) * Decimal("0.95")).quantize(Decimal("0.01")))  # rests, inside the collar

    def place(**kw: Any) -> httpx.Response:
        return httpx.post(f"{http}/v1/orders", headers=h, timeout=10, json={
            "symbol": symbol, "side": "buy", "qty": 2, "idempotency_key": uuid.uuid4().hex, **kw})

    def status(oid: str) -> str:
        return str(httpx.get(f"{http}/v1/orders/{oid}", headers=h, timeout=5).json()["status"])

    def placed(**kw: Any) -> str:
        r = place(**kw)
        assert r.status_code == 201, r.text
        return str(r.json()["order_id"])

    def crossed(event: str, oid: str) -> bool:
        # the order reaches the market maker a moment after it is routed: the cross is asked for again until its
        # fill is in the ledger (a cross with nothing waiting, and the feed's event again, change nothing)
        if status(oid) == "filled":
            return True
        venue(demo, event)
        return status(oid) == "filled"

    day, gtc = placed(type="limit", limit_price=limit), placed(type="limit", limit_price=limit, time_in_force="gtc")
    wait_until(lambda: status(day) == status(gtc) == "routed", 60, "both orders resting at the market maker")
    venue(demo, "rollover")
    wait_until(lambda: status(day) == "expired", 60, "the day order expired")
    assert status(gtc) == "routed"
    wait_until(lambda: place(qty=1).status_code == 422, 60, "orders refused after the end of system hours")
    venue(demo, "premarket")
    opg = placed(time_in_force="opg")
    wait_until(lambda: status(opg) == "routed", 60, "the opg order routed")
    wait_until(lambda: crossed("open", opg), 60, "the opg order filled in the opening cross")
    cls = placed(side="sell", time_in_force="cls")
    wait_until(lambda: status(cls) == "routed", 60, "the cls order routed")
    wait_until(lambda: crossed("close", cls), 60, "the cls order filled in the closing cross")
    venue(demo, "open")  # leave the market open for the tests after this one
    assert httpx.delete(f"{http}/v1/orders/{gtc}", headers=h, timeout=5).status_code == 202
    wait_until(lambda: status(gtc) == "cancelled", 60, "the gtc order cancelled")


def test_positions_channel_gives_a_snapshot_then_every_account_change(demo: dict[str, Any]) -> None:
    """Issue 15: the `positions` channel on the same WebSocket as the orders: the account's snapshot first, then
    one AccountUpdate per change (the buy's hold, its fill), versions one apart, none missed; GET /v1/account
    agrees with the last."""
    symbol = tradable(demo["http"])
    headers = {"authorization": f"Bearer {mint_token('bob', key=demo['key'])}"}
    held: dict[str, str] = {}  # bob's shares of the symbol after the buy, as GET /v1/account shows them

    async def go() -> None:
        async with websockets.connect(demo["ws"], additional_headers=headers) as ws:
            sub = stream_pb2.ClientMessage()
            sub.subscribe.channels.extend(["positions", "orders"])
            await ws.send(sub.SerializeToString())
            accounts: list[stream_pb2.AccountUpdate] = []
            filled = False

            async def read_until(done: Any) -> None:
                nonlocal filled
                while not done():
                    raw = await asyncio.wait_for(ws.recv(), 30)
                    assert isinstance(raw, bytes)
                    msg = stream_pb2.ServerMessage.FromString(raw)
                    kind = msg.WhichOneof("kind")
                    assert kind != "error", msg
                    if kind == "account":
                        accounts.append(msg.account)
                    elif kind == "order_update" and msg.order_update.status == "filled":
                        filled = True

            await read_until(lambda: accounts)
            snapshot = accounts[0]
            assert snapshot.snapshot and snapshot.version >= 1 and snapshot.cash  # bob was seeded with cash
            async with httpx.AsyncClient(base_url=demo["http"], headers=headers, timeout=10) as http:
                r = await http.post("/v1/orders", json={"symbol": symbol, "side": "buy", "qty": 1, "type": "market",
                                                       "idempotency_key": "positions-e2e"})
                assert r.status_code == 201, r.text
                await read_until(lambda: filled and any(
                    p.symbol == symbol for a in accounts[1:] for p in a.positions) and accounts[-1].cash_held ==
                    "0.0000")
                versions = [a.version for a in accounts]
                assert versions == list(range(snapshot.version, snapshot.version + len(accounts))), versions
                assert not any(a.snapshot for a in accounts[1:])
                assert accounts[1].cash_held != "0.0000"  # the buy's hold, the first change
                now = (await http.get("/v1/account")).json()
                assert now["version"] == accounts[-1].version and now["cash"] == accounts[-1].cash
                assert [p["symbol"] for p in now["positions"]] == [p.symbol for p in accounts[-1].positions]
                held.update((p["symbol"], p["qty"]) for p in now["positions"])
                page = (await http.get("/v1/activities", params={"page_size": 1})).json()
                assert page["activities"][0]["activity_type"] == "FILL" and page["next_page_token"]
    asyncio.run(go())
    out = subprocess.run(
        [sys.executable, "-m", "tickfan", "account", "bob", "--api", demo["http"], "--activities", "2"],
        capture_output=True, text=True, cwd=ROOT, env=demo["env"], timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    first, *activities = out.stdout.splitlines()
    # bob traded the symbol in the tests before (fractions, stops): his position is what the account said
    assert first.startswith("v") and "buying power" in first and f"{symbol} {held[symbol]} @ " in first, out.stdout
    assert len(activities) == 2 and "FILL" in activities[0] and f"buy 1 {symbol}" in activities[0], out.stdout


def test_ledger_balances_and_the_demo_stops_cleanly(demo: dict[str, Any]) -> None:
    async def check() -> list[str]:
        ledger = await Ledger.connect(DSNS, max_size=2)
        try:
            return await ledger.check()
        finally:
            await ledger.close()

    assert asyncio.run(check()) == []
    proc: subprocess.Popen[str] = demo["proc"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
