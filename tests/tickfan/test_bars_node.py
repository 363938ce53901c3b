"""Bars on a real node (feed over UDP, per-message and batched): ``GET /v1/bars`` then the ``bars:1s`` stream
meet without a gap or an overlap, and together they are the reference built from the same messages."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
from typing import Any

import httpx
import pytest
import websockets

from ingest import itch, moldudp64
from normalize.bar_types import MINUTE, SECOND
from tests.conftest import eventually, free_port
from tests.fanout.conftest import subscribe, until, until_pong
from tests.normalize.bar_reference import reference_bars, session
from tickfan.node import Node, NodeConfig, add_arguments, node_config
from vocab.clock import eastern_midnight_ns

SESSION = "TICKFAN001"
DAY = dt.date(2026, 3, 9)  # a session date (the day after DST began)
OFFSET = eastern_midnight_ns(DAY)  # the books add it to every ITCH stamp
PACKETS = session()
ALL = [m for p in PACKETS for m in p]
END = ALL[-1].timestamp + 2 * MINUTE
HALF = len(PACKETS) // 2


async def send(line: socket.socket, port: int, first_seq: int, packets: list[list[Any]]) -> int:
    seq = first_seq
    for packet in packets:
        line.sendto(moldudp64.encode_packet(SESSION, seq, [itch.encode(m) for m in packet]), ("127.0.0.1", port))
        seq += len(packet)
        await asyncio.sleep(0.001)  # loopback UDP: do not outrun the receive buffer
    return seq


def folded(bars: list[dict[str, Any]]) -> dict[int, tuple[int, ...]]:
    """start -> OHLCV of the bars that have a print, the newest state of each start winning."""
    out: dict[int, tuple[int, ...]] = {}
    for b in bars:
        out[b["start"]] = (b["open"], b["high"], b["low"], b["close"], b["volume"], b["trades"], b["notional"])
    return {s: v for s, v in out.items() if v[5]}


def from_http(b: dict[str, Any]) -> dict[str, Any]:
    def price(text: str | None) -> int:
        return 0 if text is None else int(text.replace(".", ""))

    return {"start": b["start_time_ns"], "open": price(b["open"]), "high": price(b["high"]),
            "low": price(b["low"]), "close": price(b["close"]), "volume": b["volume"], "trades": b["trades"],
            "notional": int(b["notional"]), "state": b["state"], "version": b["version"]}


@pytest.mark.parametrize("batched", [False, True], ids=["per-message", "batched"])
def test_history_then_stream_meet_and_equal_the_reference(batched: bool) -> None:
    async def main() -> None:
        http, ws = free_port(), free_port()
        port = free_port(socket.SOCK_DGRAM)
        node = Node(NodeConfig(feeds=[("127.0.0.1", port)], http=("127.0.0.1", http), ws=("127.0.0.1", ws),
                               session=SESSION, flush_interval=0.01, batched=batched, session_date=DAY))
        await node.start()
        line = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ingest = node.roles.ingest
        assert ingest is not None and ingest.bars is not None
        bars = ingest.bars
        try:
            seq = await send(line, port, 1, PACKETS[:HALF])
            first_half = sum(hasattr(m, "match_number") for p in PACKETS[:HALF] for m in p)
            await eventually(lambda: node.books.counters["messages"] >= sum(map(len, PACKETS[:HALF])),
                             what="the first half applied")
            await asyncio.sleep(3 * node.config.bar_tick)  # the quiet-bar timer has seen the feed clock
            assert bars.counters["prints"] + bars.counters["bad_prints"] <= first_half
            loc = max(range(1, 13), key=lambda x: sum(getattr(m, "locate", 0) == x for m in ALL))
            symbol = node.books.symbol_of[loc]
            assert symbol is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", timeout=10) as client:
                r = await client.get(f"/v1/bars?symbol={symbol}&interval=1s&limit=1000")
                assert r.status_code == 200, r.text
                history = [from_http(b) for b in r.json()["bars"]]
                metrics = (await client.get("/metrics")).text
                assert 'tickfan_bar_events_total{kind="prints"}' in metrics and "tickfan_bars_kept" in metrics
            assert history and history[-1]["state"] == "update"
            async with websockets.connect(f"ws://127.0.0.1:{ws}/v1/stream") as client_ws:
                await client_ws.send(subscribe(symbol, channels=("bars:1s",)))
                snap = await until(client_ws, "bars")
                assert snap.bars.snapshot
                streamed = [_wire(b) for b in snap.bars.bars]
                # nothing happened between the two: the snapshot is the history's last closed bar and open bar
                assert streamed == history[-len(streamed):]
                await send(line, port, seq, PACKETS[HALF:])
                await eventually(lambda: node.books.counters["messages"] >= len(ALL), what="everything applied")
                bars.close_until(END + OFFSET)  # the session's end: every bar closes
                node.fanout.notify()  # type: ignore[union-attr]
                fanout = node.fanout
                assert fanout is not None
                await eventually(lambda: fanout.hub.bars.cursor == bars.bars_total, what="all flushed")
                for msg in await until_pong(client_ws):
                    if msg.WhichOneof("kind") == "bars":
                        streamed += [_wire(b) for b in msg.bars.bars]
            # no gap, no overlap: the stream starts at the history's last closed bar, and every streamed bar
            # either is a newer state of a history bar (same start) or a later bar
            assert streamed[0]["start"] <= history[-1]["start"]
            starts = [b["start"] for b in streamed if b["state"] != "revised"]
            assert starts == sorted(starts)
            want = {st + OFFSET: v for (lc, w, st), v in reference_bars(ALL).items() if lc == loc and w == SECOND}
            got = folded(history + streamed)
            assert got == {s: v for s, v in want.items() if s >= history[0]["start"]}
            assert all(s % SECOND == 0 for s in got)
        finally:
            line.close()
            await node.close()

    asyncio.run(main())


def _wire(b: Any) -> dict[str, Any]:
    return {"start": b.start_time_ns, "open": b.open, "high": b.high, "low": b.low, "close": b.close,
            "volume": b.volume, "trades": b.trades, "notional": b.notional, "state": b.state, "version": b.version}


def test_bar_flags_reach_the_builder_and_a_bad_one_is_a_clear_error() -> None:
    def parse(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(["--session", SESSION, *argv])

    config = node_config(parse("--bars-history-1s", "60", "--bars-history-1m", "30", "--bars-print-log", "1000"))
    assert (config.bars_history_1s, config.bars_history_1m, config.bars_print_log) == (60, 30, 1000)
    ingest = Node(config).roles.ingest
    assert ingest is not None and ingest.bars is not None
    builder = ingest.bars.builder
    assert builder._history[0].limit == 60 and builder._history[1].limit == 30 and builder._log.capacity == 1000
    with pytest.raises(SystemExit, match="bars-history-1s"):
        node_config(parse("--bars-history-1s", "0"))
