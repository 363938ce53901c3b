"""The ceiling: socketify (uWebSockets in C++ under Python), its native pub/sub.

    build/peers/venv/bin/python benchmarks/peers/socketify_server.py --port 9002 [--duration 300]

Clients connect to ``/v1/stream`` and send a tickfan ``Subscribe``: each symbol becomes a uWS topic
(``ws.subscribe``). The feed connects to ``/pub`` and sends batches of updates; each update is one
``app.publish(symbol, frame)``. uWS queues a topic's messages and writes each subscriber's share once per
event-loop iteration (corked), so many updates leave in one socket write: batching without conflation,
every update delivered. Per-subscriber backpressure is capped at ``--max-buffer`` bytes (uWS then drops
that subscriber's messages), as the floor server skips them.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wire import subscribed_symbols, unpack_updates  # noqa: E402


def main() -> None:
    from socketify import App, AppListenOptions, OpCode

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--max-buffer", type=int, default=4 << 20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.alarm(args.duration)  # bounded in time whatever happens (SIGALRM's default action ends us)
    app = App()
    binary = OpCode.BINARY

    def on_client_message(ws, message, opcode):  # type: ignore[no-untyped-def]
        data = message if isinstance(message, bytes) else message.encode()
        for sym in subscribed_symbols(data):
            ws.subscribe(sym)

    def on_feed_message(ws, message, opcode):  # type: ignore[no-untyped-def]
        publish = app.publish
        for sym, frame in unpack_updates(message):
            publish(sym, frame, binary)

    behaviour = {"max_payload_length": 1 << 24, "idle_timeout": 0, "max_backpressure": args.max_buffer,
                 "compression": 0}
    app.ws("/pub", {**behaviour, "message": on_feed_message})
    app.ws("/v1/stream", {**behaviour, "message": on_client_message})
    app.listen(AppListenOptions(port=args.port, host=args.host),
               lambda config: print(f"socketify server is up on {args.host}:{args.port}", flush=True))
    app.run()


if __name__ == "__main__":
    main()
