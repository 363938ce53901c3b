"""``tickfan watch AAPL TSLA ...``: live quotes from a fan-out node, as a table in the terminal.

A client written from ``proto/stream.proto`` alone, with the ``websockets`` library (a second WebSocket
implementation, so every run also checks interoperability with the picows server).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import Any

from normalize.quote import QuoteView
from tickfan.args import add_client_tls_arguments, client_tls
from tickfan_proto import stream_pb2 as pb


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbols", nargs="+", metavar="SYMBOL", help="tickers to watch, e.g. AAPL TSLA")
    parser.add_argument("--stream", "--url", default="ws://127.0.0.1:8765/v1/stream", metavar="URL",
                        help="the fan-out node's WebSocket stream (default %(default)s; --url is its old spelling)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line per update instead of a table (for scripts)")
    add_client_tls_arguments(parser)


def _row(q: pb.Quote, now: int) -> dict[str, Any]:
    """One table row: the quote view's record (exact decimal prices), "-" for an empty side."""
    rec = QuoteView.from_pb(q).record()
    return {
        "symbol": q.symbol, "bid": rec["bid_price"] or "-", "bid_size": q.bid_size, "ask": rec["ask_price"] or "-",
        "ask_size": q.ask_size, "last": rec["last_price"] or "-", "last_size": q.last_size, "volume": q.volume,
        "seq": q.seq, "latency_ms": round((now - q.exchange_time_ns) / 1e6, 1) if q.exchange_time_ns else None,
        "halted": q.halted, "stale": q.stale, "trading_state": q.trading_state, "trading_reason": q.trading_reason,
    }


def _table(rows: dict[str, dict[str, Any]], symbols: list[str], status: str) -> Any:
    from rich.table import Table

    table = Table(title="tickfan watch", caption=status, expand=False)
    for col, justify in (("symbol", "left"), ("bid", "right"), ("bid size", "right"), ("ask", "right"),
                         ("ask size", "right"), ("last", "right"), ("volume", "right"), ("seq", "right"),
                         ("age ms", "right"), ("flags", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for sym in symbols:
        r = rows.get(sym)
        if r is None:
            table.add_row(sym, *["…"] * 8, "")
            continue
        halted = {"P": "PAUSED", "Q": "QUOTATION ONLY"}.get(r["trading_state"], "HALTED")
        why = f" {r['trading_reason']}" if r["trading_reason"] else ""
        flags = " ".join(f for f, on in ((halted + why, r["halted"]), ("STALE", r["stale"])) if on)
        table.add_row(sym, r["bid"], f"{r['bid_size']:,}", r["ask"], f"{r['ask_size']:,}", r["last"],
                      f"{r['volume']:,}", str(r["seq"]),
                      "" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}", flags)
    return table


async def _watch(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    """Until ``stop`` is set (Ctrl-C, SIGTERM, ``--duration``, or the caller)."""
    import orjson
    import websockets

    symbols = [s.upper() for s in args.symbols]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    try:
        ws = await websockets.connect(args.stream, open_timeout=5, ssl=client_tls(args, args.stream))
    except (TimeoutError, OSError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        print(f"tickfan watch: cannot connect to {args.stream}: {exc}\n"
              "  is a node running? start one with `make demo` or `tickfan demo`", file=sys.stderr)
        return 1
    rows: dict[str, dict[str, Any]] = {}
    status = "connecting"
    live = None
    if not args.json:
        from rich.live import Live

        live = Live(_table(rows, symbols, status), refresh_per_second=8, transient=False)
        live.start()
    exit_code = 0
    try:
        sub = pb.ClientMessage(subscribe=pb.Subscribe(symbols=symbols))
        await ws.send(sub.SerializeToString())
        updates = 0
        stopper = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            recv = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({recv, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if recv not in done:
                recv.cancel()
                break
            raw = recv.result()
            msg = pb.ServerMessage.FromString(raw if isinstance(raw, bytes) else raw.encode())
            kind = msg.WhichOneof("kind")
            quotes: list[pb.Quote] = []
            if kind == "snapshot":
                quotes = list(msg.snapshot.quotes)
            elif kind == "quotes":
                quotes = list(msg.quotes.quotes)
            elif kind == "error":
                text = f"error {msg.error.code}: {msg.error.message}"
                if args.json:
                    print(orjson.dumps({"error": msg.error.code, "message": msg.error.message}).decode(),
                          flush=True)
                else:
                    status = text
                if msg.error.code == "unknown_symbol":
                    print(f"tickfan watch: {text}", file=sys.stderr)
                    unknown = set(msg.error.symbols)
                    symbols = [s for s in symbols if s not in unknown]  # no row to wait for
            now = time.time_ns()  # exchange_time_ns is Unix epoch ns: age is now minus it
            for q in quotes:
                row = _row(q, now)
                rows[q.symbol] = row
                updates += 1
                if args.json:
                    print(orjson.dumps({"type": kind, **row}).decode(), flush=True)
            if live is not None:
                if kind in ("snapshot", "quotes"):
                    status = f"{updates:,} updates from {args.stream}"
                live.update(_table(rows, symbols, status))
        stopper.cancel()
    except websockets.ConnectionClosed as exc:
        print(f"tickfan watch: connection closed: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        if live is not None:
            live.stop()
        await ws.close()
    return exit_code


def main(args: argparse.Namespace) -> int:
    import os

    import uvloop

    try:
        return uvloop.run(_watch(args))
    except BrokenPipeError:  # `tickfan watch --json ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
