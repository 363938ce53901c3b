"""End to end: `tickfan demo` as a subprocess, real UDP inside it, real WebSocket and HTTP clients outside.

Frames are decoded with message classes built from protoc's descriptor of proto/stream.proto, not with
the committed generated modules, so this also proves a client written only from the .proto files works.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.e2e.conftest import Launch
from venue.simulator import fixed_universe

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)



@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """(ClientMessage, ServerMessage) classes made from the .proto source alone."""
    out = tmp_path_factory.mktemp("proto") / "stream.desc"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "proto"),
         f"--descriptor_set_out={out}", str(ROOT / "proto" / "stream.proto")],
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("tickfan.v1.ClientMessage")),
            get(pool.FindMessageTypeByName("tickfan.v1.ServerMessage")))


@pytest.fixture(scope="module")
def demo(launch_module_demo: Launch) -> dict[str, Any]:
    d = launch_module_demo("--rate", "1000", "--duration", "120")
    return {"proc": d.proc, "http": d.http, "ws": d.ws}


async def _frames(ws: Any, server_cls: Any, seconds: float) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        assert isinstance(raw, bytes), "binary mode must send binary frames"
        out.append(server_cls.FromString(raw))
    return out


def test_subscribe_snapshot_then_updates_and_matches_http(demo: dict[str, Any], wire: tuple[Any, Any]) -> None:
    client_cls, server_cls = wire
    # hot names stream fast; quiet ones (from the Zipf tail) change rarely enough to catch one version over
    # both HTTP and the stream
    quiet = fixed_universe(300)[150:153]
    symbols = ["AAPL", "TSLA", "NVDA", *quiet]

    async def scenario() -> None:
        async with websockets.connect(demo["ws"]) as ws:
            sub = client_cls()
            sub.subscribe.symbols.extend(symbols)
            await ws.send(sub.SerializeToString())
            frames = await _frames(ws, server_cls, 4.0)
            kinds = [f.WhichOneof("kind") for f in frames]
            assert "snapshot" in kinds and "quotes" in kinds, kinds
            first_snapshot = kinds.index("snapshot")
            assert "quotes" not in kinds[:first_snapshot], "an update arrived before the snapshot"
            snap = frames[first_snapshot].snapshot
            assert sorted(q.symbol for q in snap.quotes) == sorted(symbols)
            last_seq = {q.symbol: q.seq for q in snap.quotes}
            latest: dict[str, Any] = {q.symbol: q for q in snap.quotes}
            updates = 0
            for f in frames[first_snapshot + 1:]:
                if f.WhichOneof("kind") != "quotes":
                    continue
                for q in f.quotes.quotes:
                    assert q.symbol in symbols
                    assert q.seq > last_seq[q.symbol], f"{q.symbol} seq went from {last_seq[q.symbol]} to {q.seq}"
                    last_seq[q.symbol] = q.seq
                    latest[q.symbol] = q
                    updates += 1
            assert updates > 0
            # The stream and the snapshot endpoint agree on every symbol at the same version.
            matched: set[str] = set()
            async with httpx.AsyncClient() as http:
                for _ in range(60):
                    for f in await _frames(ws, server_cls, 0.05):
                        if f.WhichOneof("kind") == "quotes":
                            for q in f.quotes.quotes:
                                assert q.seq > last_seq[q.symbol]
                                last_seq[q.symbol] = q.seq
                                latest[q.symbol] = q
                    body = (await http.get(f"{demo['http']}/v1/quotes", params={"symbols": ",".join(symbols)})).json()
                    for rec in body["quotes"]:
                        q = latest[rec["symbol"]]
                        if rec["seq"] != q.seq:
                            continue
                        matched.add(rec["symbol"])
                        assert rec["bid_size"] == q.bid_size and rec["ask_size"] == q.ask_size
                        assert rec["volume"] == q.volume and rec["last_size"] == q.last_size
                        for field in ("bid_price", "ask_price", "last_price"):
                            value = getattr(q, field)
                            expected = None if value == 0 else f"{value // 10000}.{value % 10000:04d}"
                            assert rec[field] == expected, (rec, q)
                    if matched >= set(quiet):
                        break
            assert matched >= set(quiet), f"never caught the same version over HTTP for {set(quiet) - matched}"

    asyncio.run(scenario())


def test_bad_client_refused_good_client_keeps_streaming(demo: dict[str, Any], wire: tuple[Any, Any]) -> None:
    client_cls, server_cls = wire

    async def scenario() -> None:
        async with websockets.connect(demo["ws"]) as good, websockets.connect(demo["ws"]) as bad:
            sub = client_cls()
            sub.subscribe.symbols.append("TSLA")
            await good.send(sub.SerializeToString())
            await _frames(good, server_cls, 1.0)

            await bad.send(b"\xff\x00garbage\x17")
            errors = [f for f in await _frames(bad, server_cls, 1.0) if f.WhichOneof("kind") == "error"]
            assert errors and errors[0].error.code == "bad_message"

            unknown = client_cls()
            unknown.subscribe.symbols.append("NOSUCHSYM")
            await bad.send(unknown.SerializeToString())
            errors = [f for f in await _frames(bad, server_cls, 1.0) if f.WhichOneof("kind") == "error"]
            assert errors and errors[0].error.code == "unknown_symbol"
            assert list(errors[0].error.symbols) == ["NOSUCHSYM"]

            await bad.send(b"\x00" * (1 << 20))  # over the 64 KiB limit: error frame, then close 1009
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for _ in range(100):
                    await bad.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

            after = [f for f in await _frames(good, server_cls, 3.0) if f.WhichOneof("kind") == "quotes"]
            assert after, "the good client stopped receiving updates"

    asyncio.run(scenario())


def test_json_mode_and_unknown_symbol_over_http(demo: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with websockets.connect(demo["ws"] + "?format=json") as ws:
            await ws.send(json.dumps({"subscribe": {"symbols": ["AAPL"]}}))
            seen: list[str] = []
            end = time.monotonic() + 4
            while time.monotonic() < end and "quotes" not in seen:
                raw = await asyncio.wait_for(ws.recv(), 4)
                assert isinstance(raw, str)
                seen.extend(json.loads(raw).keys())
            assert "snapshot" in seen and "quotes" in seen

    asyncio.run(scenario())
    metrics = httpx.get(f"{demo['http']}/metrics").text
    fed = [line for line in metrics.splitlines() if line.startswith('tickfan_feed_events_total{kind="messages"}')]
    assert fed and float(fed[0].split()[-1]) > 0
    assert "tickfan_e2e_latency_seconds_bucket" in metrics and "tickfan_connections" in metrics
    r = httpx.get(f"{demo['http']}/v1/quotes", params={"symbols": "AAPL,ZZZZZZ"})
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "unknown_symbol", "message": r.json()["error"]["message"],
                                 "symbols": ["ZZZZZZ"]}


def test_depth_and_trades_channels(demo: dict[str, Any], wire: tuple[Any, Any]) -> None:
    client_cls, server_cls = wire

    async def scenario() -> None:
        async with websockets.connect(demo["ws"]) as ws:
            sub = client_cls()
            sub.subscribe.symbols.extend(["TSLA", "NVDA"])
            sub.subscribe.channels.extend(["depth", "trades"])
            await ws.send(sub.SerializeToString())
            frames = await _frames(ws, server_cls, 4.0)
            depth = [f.depth for f in frames if f.WhichOneof("kind") == "depth"]
            trades = [t for f in frames if f.WhichOneof("kind") == "trades" for t in f.trades.trades]
            assert depth and depth[0].snapshot and {b.symbol for b in depth[0].books} == {"TSLA", "NVDA"}
            for batch in depth:
                for book in batch.books:
                    bids = [lv.price for lv in book.bids]
                    asks = [lv.price for lv in book.asks]
                    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
                    assert len(bids) <= 10 and len(asks) <= 10
                    if bids and asks:
                        assert bids[0] < asks[0], "crossed book"
            assert any(not b.snapshot for b in depth), "no depth update after the snapshot"
            assert trades and all(t.symbol in ("TSLA", "NVDA") and t.size > 0 for t in trades)
            assert not [f for f in frames if f.WhichOneof("kind") == "quotes"], "quotes were not asked for"
            # trade context: per symbol increasing trade_seq (consecutive unless a flush passed its 100-print cap),
            # printable, an aggressor on executions; every batch stamped with the node's send time; a resume token
            for sym in ("TSLA", "NVDA"):
                numbers = [t.trade_seq for t in trades if t.symbol == sym]
                assert all(a < b for a, b in zip(numbers, numbers[1:], strict=False))
            assert all(t.printable and t.trade_seq > 0 for t in trades)
            assert {t.aggressor for t in trades} & {"buy", "sell"}
            batches = [getattr(f, k) for f in frames if (k := f.WhichOneof("kind")) in ("depth", "trades")]
            assert all(b.send_time_ns > 0 for b in batches)
            acks = [f.subscribed for f in frames if f.WhichOneof("kind") == "subscribed"]
            assert acks and acks[0].protocol_version == 2 and acks[0].resume_token

    asyncio.run(scenario())


def test_bars_channel_and_history(demo: dict[str, Any], wire: tuple[Any, Any]) -> None:
    """A client subscribed to bars:1s in the demo receives bars: a snapshot, updates, finals, epoch starts."""
    client_cls, server_cls = wire

    async def scenario() -> None:
        async with websockets.connect(demo["ws"]) as ws:
            sub = client_cls()
            sub.subscribe.symbols.extend(["TSLA", "NVDA"])
            sub.subscribe.channels.extend(["bars:1s"])
            await ws.send(sub.SerializeToString())
            frames = [f.bars for f in await _frames(ws, server_cls, 3.5) if f.WhichOneof("kind") == "bars"]
        assert frames and frames[0].snapshot and not any(f.snapshot for f in frames[1:])
        bars = [b for f in frames for b in f.bars]
        assert {b.state for b in bars} >= {"update", "final"}, "bars open and close live"
        newest: dict[str, int] = {}
        for b in bars:
            assert b.interval == "1s" and b.symbol in ("TSLA", "NVDA")
            assert b.start_time_ns % 1_000_000_000 == 0 and b.start_time_ns > 1_600_000_000 * 10**9  # epoch ns
            if b.state != "revised":
                assert b.start_time_ns >= newest.get(b.symbol, 0), "a bar older than one already received"
                newest[b.symbol] = b.start_time_ns
            if b.trades:
                assert b.low <= b.open <= b.high and b.low <= b.close <= b.high and b.low <= b.vwap <= b.high
        r = httpx.get(f"{demo['http']}/v1/bars", params={"symbol": "TSLA", "interval": "1s", "limit": "5"},
                      timeout=10)
        assert r.status_code == 200 and 1 <= len(r.json()["bars"]) <= 5

    asyncio.run(scenario())


def test_quotes_depth_and_prints_carry_epoch_times_near_now(demo: dict[str, Any], wire: tuple[Any, Any]) -> None:
    """One clock: exchange_time_ns is Unix epoch ns (protocol version 2), so a client's own clock minus it is the
    data's age: the freshest of a frame within a second of now (version 1 counted from midnight: decades off)."""
    client_cls, server_cls = wire

    async def scenario() -> None:
        async with websockets.connect(demo["ws"]) as ws:
            sub = client_cls()
            sub.subscribe.symbols.extend(["TSLA", "NVDA", "AAPL"])
            sub.subscribe.channels.extend(["quotes", "depth", "trades"])
            await ws.send(sub.SerializeToString())
            fresh: set[str] = set()
            deadline = time.monotonic() + 30
            while fresh != {"quotes", "depth", "trades"} and time.monotonic() < deadline:
                for f in await _frames(ws, server_cls, 0.2):
                    now = time.time_ns()
                    kind = f.WhichOneof("kind")
                    if kind == "quotes":
                        times = [q.exchange_time_ns for q in f.quotes.quotes]
                    elif kind == "trades":
                        times = [t.exchange_time_ns for t in f.trades.trades]
                    elif kind == "depth" and not f.depth.snapshot:  # a snapshot may hold a quiet book
                        times = [b.exchange_time_ns for b in f.depth.books]
                    else:
                        continue
                    # every time is a plausible instant of this demo, never ahead of the client by much
                    assert all(now - 600 * 10**9 < t < now + 10**9 for t in times), (kind, now, times)
                    if now - max(times) < 10**9:
                        fresh.add(kind)
            assert fresh == {"quotes", "depth", "trades"}, f"no frame within a second of now for {fresh}"

    asyncio.run(scenario())


def test_demo_stops_cleanly_on_ctrl_c(demo: dict[str, Any]) -> None:
    proc: subprocess.Popen[str] = demo["proc"]
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the demo should run the simulator as a child process"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
