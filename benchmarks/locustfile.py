"""Locust scenarios: market watchers on the WebSocket stream, recording end-to-end latency.

Start a node first (``make demo`` or ``tickfan demo``), then, headless, bounded in users and time:

    .venv/bin/locust -f benchmarks/locustfile.py --headless -u 200 -r 50 -t 30s --host ws://127.0.0.1:8765

Each user connects to ``/v1/stream``, subscribes to a watchlist drawn like real interest (most users watch
the hot tickers, a few watch the long tail), reads every frame, and now and then changes its watchlist.
Every quotes frame is reported to Locust as one "request" named ``quotes frame``, whose response time is the
end-to-end latency of its freshest quote (exchange timestamp -> received) in milliseconds, so Locust's
percentiles are latency percentiles. Protocol errors are reported as failures. Load goes to loopback only.
"""

from __future__ import annotations

import random
import time

import gevent
import websocket  # websocket-client: synchronous, cooperates with Locust's gevent
from locust import User, between, events, task

from tickfan_proto import stream_pb2 as pb
from venue.simulator import fixed_universe

UNIVERSE = fixed_universe(10_000)
WEIGHTS = [1.0 / (rank + 1) ** 1.1 for rank in range(len(UNIVERSE))]


def watchlist(rng: random.Random, size: int) -> list[str]:
    return sorted(set(rng.choices(UNIVERSE, weights=WEIGHTS, k=size)))


class MarketWatcher(User):
    wait_time = between(5, 20)  # how often a user edits the watchlist

    def on_start(self) -> None:
        self.rng = random.Random()
        url = (self.host or "ws://127.0.0.1:8765").rstrip("/") + "/v1/stream"
        self.ws = websocket.create_connection(url, timeout=10)
        self.stopping = False
        self.symbols = watchlist(self.rng, self.rng.randint(3, 20))
        self._send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=self.symbols)))
        self.reader = gevent.spawn(self._read)

    def on_stop(self) -> None:
        self.stopping = True
        self.reader.kill()
        self.ws.close()

    def _send(self, message: pb.ClientMessage) -> None:
        self.ws.send_binary(message.SerializeToString())

    def _read(self) -> None:
        fire = events.request.fire
        while True:
            try:
                raw = self.ws.recv()
            except Exception as exc:  # connection gone: report once (unless we are the ones closing it)
                if self.stopping:
                    return
                fire(request_type="WS", name="connection", response_time=0, response_length=0, exception=exc,
                     context={})
                return
            data = raw if isinstance(raw, bytes) else raw.encode()
            msg = pb.ServerMessage.FromString(data)
            kind = msg.WhichOneof("kind")
            if kind == "quotes" and msg.quotes.quotes:
                freshest = max(q.exchange_time_ns for q in msg.quotes.quotes)
                latency_ms = (time.time_ns() - freshest) / 1e6
                fire(request_type="WS", name="quotes frame", response_time=latency_ms, response_length=len(data),
                     exception=None, context={})
            elif kind == "error":
                fire(request_type="WS", name=f"error {msg.error.code}", response_time=0, response_length=len(data),
                     exception=RuntimeError(msg.error.message), context={})

    @task
    def edit_watchlist(self) -> None:
        drop = self.rng.sample(self.symbols, k=min(2, len(self.symbols)))
        add = watchlist(self.rng, 3)
        start = time.perf_counter()
        self._send(pb.ClientMessage(unsubscribe=pb.Unsubscribe(symbols=drop)))
        self._send(pb.ClientMessage(subscribe=pb.Subscribe(symbols=add)))
        self.symbols = sorted((set(self.symbols) - set(drop)) | set(add))
        elapsed_ms = (time.perf_counter() - start) * 1000
        events.request.fire(request_type="WS", name="edit watchlist", response_time=elapsed_ms, response_length=0,
                            exception=None, context={})


