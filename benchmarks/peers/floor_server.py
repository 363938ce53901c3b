"""The floor: a plain per-client-send WebSocket server on picows, with no conflation and no batching.

    python benchmarks/peers/floor_server.py --port 9001 [--duration 300]

Clients connect to ``/v1/stream`` and send a tickfan ``Subscribe``; the feed connects to ``/pub`` and sends
batches of updates. Every update is sent to every subscriber of its symbol as its own WebSocket frame,
one ``send`` (one socket write) per update per client: what a naive broadcast server does. A client with
more than ``--max-buffer`` bytes unsent is skipped for that update (counted), so memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wire import subscribed_symbols, unpack_updates  # noqa: E402


def main() -> None:
    import uvloop
    from picows import WSListener, WSMsgType, ws_create_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--max-buffer", type=int, default=4 << 20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subs: dict[str, set[object]] = {}
    stats = {"sends": 0, "skipped": 0, "clients": 0}
    limit = args.max_buffer

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.symbols: list[str] = []

        def on_ws_connected(self, transport: object) -> None:
            stats["clients"] += 1

        def on_ws_frame(self, transport: object, frame: object) -> None:
            for sym in subscribed_symbols(frame.get_payload_as_bytes()):  # type: ignore[attr-defined]
                subs.setdefault(sym, set()).add(transport)
                self.symbols.append(sym)

        def on_ws_disconnected(self, transport: object) -> None:
            stats["clients"] -= 1
            for sym in self.symbols:
                subs.get(sym, set()).discard(transport)

    class Feed(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: object, frame: object) -> None:
            binary = WSMsgType.BINARY
            for sym, data in unpack_updates(frame.get_payload_as_bytes()):  # type: ignore[attr-defined]
                for t in subs.get(sym, ()):
                    if t.underlying_transport.get_write_buffer_size() > limit:  # type: ignore[attr-defined]
                        stats["skipped"] += 1
                        continue
                    t.send(binary, data)  # type: ignore[attr-defined]
                    stats["sends"] += 1

    def route(request: object) -> WSListener:
        return Feed() if request.path.startswith(b"/pub") else Client()  # type: ignore[attr-defined]

    async def run() -> None:
        server = await ws_create_server(route, args.host, args.port, max_frame_size=1 << 24)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.call_later(args.duration, stop.set)
        print(f"floor server is up on {args.host}:{args.port}", flush=True)
        await stop.wait()
        print(f"floor server: {stats}", flush=True)
        server.close()

    uvloop.run(run())


if __name__ == "__main__":
    main()
