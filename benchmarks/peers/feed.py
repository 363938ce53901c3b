"""The feed every server in the side-by-side benchmark gets: one pre-generated ITCH session, paced, re-stamped.

The simulator's messages are generated once (untimed) and cached under ``build/bench/`` as a length-prefixed
ITCH file, then cut into MoldUDP64 packets. While running, each packet's messages are stamped with the
send time (ITCH: nanoseconds since midnight US Eastern of today, ``DAY``), so every latency the clients
measure starts when the update left the exchange side. Two ways out:

- ``udp``: the packets go to a tickfan node's feed port (unicast, or a multicast group on loopback);
- ``publish``: the packets are applied here to a ``KernelBooks`` (the same batched decoder and book
  kernel a tickfan node uses), and every symbol whose quote moved in that packet is published to a peer
  server as one update: a ``ServerMessage{quotes: [Quote]}`` frame, byte for byte what tickfan would send
  for one quote, carrying the exchange timestamp. Peers get every change of every watched symbol, packet
  by packet: conflation, if any, is theirs to do. With ``conflate_s`` (the ``-conflated`` peers) the feed
  is instead the conflating publisher a user would put in front of such a server: once per period, each
  watched symbol that moved is published once with its newest quote (``conflate.Conflator``), so the
  server sends one frame per subscriber per symbol per period, the job tickfan does at ``--flush-ms``.

The pace is given in ITCH messages/s (R). It starts at ``idle_rate`` while clients connect and switches to
``rate`` when the orchestrator says go; it stops after the messages run out or on stop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conflate import Conflator  # noqa: E402

from ingest.moldudp64 import PacketBuilder, end_of_session  # noqa: E402
from venue.simulator import fixed_universe  # noqa: E402
from vocab.clock import itch_now, today_eastern  # noqa: E402

CACHE = ROOT / "build" / "bench"
SESSION = "BENCHFEED1"
DAY = today_eastern()  # the stamps' date: books convert with it (a node with no --session-date: today too)


def messages(symbols: int, count: int, seed: int = 7) -> list[bytes]:
    """``count`` simulator messages (opening included), from the cache when it has them."""
    from venue.simulator import ExchangeSimulator

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"feed-{symbols}-{seed}-{count}.itch"
    if path.exists():
        data = path.read_bytes()
        out, pos = [], 0
        while pos < len(data):
            n = int.from_bytes(data[pos:pos + 2], "big")
            out.append(data[pos + 2:pos + 2 + n])
            pos += 2 + n
        return out
    print(f"  generating {count:,} feed messages for {symbols:,} symbols (once; cached in {path}) ...",
          flush=True)
    sim = ExchangeSimulator(symbols, seed=seed)
    out = []
    while len(out) < count:
        out += sim.generate_encoded(min(200_000, count - len(out)))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in out))
    os.replace(tmp, path)
    return out


def packets(msgs: list[bytes]) -> list[tuple[bytearray, np.ndarray, int, list[tuple[int, int]]]]:
    """MoldUDP64 packets and the byte positions of their messages' timestamps (stamped at send time)."""
    builder = PacketBuilder(SESSION)
    out = []
    for m in msgs:
        full = builder.add(m)
        if full is not None:
            out.append(_stampable(full))
    tail = builder.flush()
    if tail is not None:
        out.append(_stampable(tail))
    return out


def _stampable(packet: bytes) -> tuple[bytearray, np.ndarray, int, list[tuple[int, int]]]:
    """The packet, its messages' timestamp byte positions, its message count and (start, end) of each."""
    count = int.from_bytes(packet[18:20], "big")
    pos, starts, bounds = 20, [], []
    for _ in range(count):
        starts.append(pos + 2 + 5)  # length prefix, then type(1) locate(2) tracking(2), then the timestamp
        n = int.from_bytes(packet[pos:pos + 2], "big")
        bounds.append((pos + 2, pos + 2 + n))
        pos += 2 + n
    where = (np.array(starts, np.int64)[:, None] + np.arange(6)).ravel()
    return bytearray(packet), where, count, bounds


def stamp(packet: bytearray, where: np.ndarray, n: int) -> bytes:
    view = np.frombuffer(packet, np.uint8)
    view[where] = np.tile(np.frombuffer(itch_now(DAY).to_bytes(6, "big"), np.uint8), n)
    return bytes(packet)


# ---------------------------------------------------------------------------------------------- publishers
class Publisher:
    """Where ``publish`` mode sends each packet's updates: (symbol, frame) pairs."""

    async def start(self) -> None: ...

    def send(self, updates: list[tuple[str, bytes]]) -> None: ...

    async def close(self) -> None: ...


def pack_updates(updates: list[tuple[str, bytes]]) -> bytes:
    """One message to a Python peer: repeated (u8 symbol length, symbol, u32 frame length, frame)."""
    return b"".join(struct.pack("<B", len(s)) + s.encode() + struct.pack("<I", len(f)) + f for s, f in updates)


class WebSocketPublisher(Publisher):
    """One WebSocket connection to a Python peer's ``/pub``; one binary message per feed packet."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.transport: Any = None
        self.sent = 0

    async def start(self) -> None:
        from picows import WSListener, ws_connect

        for _ in range(100):
            try:
                self.transport, _ = await ws_connect(WSListener, self.url)
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"cannot reach the peer's publish endpoint {self.url}")

    def send(self, updates: list[tuple[str, bytes]]) -> None:
        from picows import WSMsgType

        self.transport.send(WSMsgType.BINARY, pack_updates(updates))
        self.sent += len(updates)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()


class NchanPublisher(Publisher):
    """HTTP/1.1 keep-alive connections to nchan's publisher location, requests pipelined: one
    ``POST /pub/SYMBOL`` per update (nchan's own publishing API), many per write."""

    def __init__(self, host: str, port: int, connections: int = 4) -> None:
        self.host, self.port, self.connections = host, port, connections
        self.writers: list[asyncio.StreamWriter] = []
        self._readers: list[asyncio.Task[None]] = []
        self.sent = 0
        self.responses = 0
        self._next = 0

    async def start(self) -> None:
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.writers.append(writer)
            self._readers.append(asyncio.create_task(self._drain(reader)))

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            self.responses += chunk.count(b"HTTP/1.1 ")

    def send(self, updates: list[tuple[str, bytes]]) -> None:
        head = (b"POST /pub/%s HTTP/1.1\r\nHost: b\r\n"
                b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n")
        data = b"".join(head % (s.encode(), len(f)) + f for s, f in updates)
        w = self.writers[self._next % len(self.writers)]
        self._next += 1
        w.write(data)
        self.sent += len(updates)

    async def close(self) -> None:
        for t in self._readers:
            t.cancel()
        for w in self.writers:
            w.close()


# ---------------------------------------------------------------------------------------------- the run
def run(*, mode: str, target: str, rate: float, idle_rate: float, symbols: int, count: int,
        watched: set[str] | None, go: Any, stop: Any, report: Any, ready: Any, opened: Any,
        rewinder: tuple[str, int] | None = None, conflate_s: float = 0.0) -> None:
    """The feed process (see the module docstring). ``go``/``stop``/``ready``/``opened`` are multiprocessing
    Events (``opened``: the opening, every stock directory included, has been sent); ``report`` a Queue that
    gets the counters at the end. In ``udp`` mode, ``rewinder`` serves MoldUDP64 re-requests of what was
    sent (as stamped), so a node that overflowed its receive buffer recovers instead of going stale. In
    ``publish`` mode, ``conflate_s`` > 0 publishes each moved symbol at most once per that many seconds."""
    import uvloop

    from venue.simulator import ExchangeSimulator

    opening = len(ExchangeSimulator(symbols, seed=7).opening())
    msgs = messages(symbols, count)
    pkts = packets(msgs)
    del msgs
    sock = None
    books: Any = None
    publisher: Publisher | None = None
    if mode == "udp":
        from ingest.udp import sender_socket
        from vocab.addr import parse_hostport

        host, port = parse_hostport(target)
        sock = sender_socket(host, port)
    else:
        from normalize.kernel import KernelBooks, warm_up

        warm_up()
        books = KernelBooks(session_date=DAY)  # quotes carry epoch ns, as a tickfan node sends them
        if target.startswith("nchan://"):
            hp = target.removeprefix("nchan://")
            publisher = NchanPublisher(hp.rsplit(":", 1)[0], int(hp.rsplit(":", 1)[1]))
        else:
            publisher = WebSocketPublisher(target)
    counters = {"messages": 0, "packets": 0, "updates": 0, "updates_at_rate": 0, "seconds_at_rate": 0.0,
                "messages_at_rate": 0, "ran_out": 0}

    async def main() -> None:
        from fanout.encode import TAG_QUOTES, build_quote, entry, wrap
        from venue.rewinder import Rewinder

        rw: Rewinder | None = None
        if publisher is not None:
            await publisher.start()
        if rewinder is not None and sock is not None:
            rw = Rewinder(SESSION, 2_000_000)
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: rw, local_addr=rewinder)
        ready.set()
        # the simulator gives ticker k of fixed_universe the locate k + 1
        watched_mask = np.zeros(len(books.seq) if books is not None else 1, np.bool_)
        if books is not None:
            for k, sym in enumerate(fixed_universe(symbols)):
                watched_mask[k + 1] = watched is None or sym in watched
        conflator = Conflator(watched_mask, conflate_s)

        def publish(now: float) -> None:
            moved = conflator.take(books.seq, books.high_locate + 1, now)
            if not len(moved):
                return
            updates = []
            for loc in moved.tolist():
                q = build_quote(books, loc)
                updates.append((q.symbol, wrap(TAG_QUOTES, (entry(q.SerializeToString()),))))
            assert publisher is not None
            publisher.send(updates)
            counters["updates"] += len(updates)

        i = 0
        sent = 0
        due = 0.0
        last = time.monotonic()
        fast_since: float | None = None
        send: Callable[[bytes], None] | None = sock.send if sock is not None else None
        while not stop.is_set() and i < len(pkts):
            now = time.monotonic()
            if sent >= opening and not opened.is_set():
                opened.set()
            current = rate if go.is_set() else idle_rate if sent >= opening else 200_000
            if go.is_set() and fast_since is None:
                fast_since = now
                counters["updates_before"] = counters["updates"]
                counters["messages_before"] = sent
            due = min(due + (now - last) * current, sent + current * 0.05)  # no banked shortfall
            last = now
            while sent < due and i < len(pkts):
                packet, where, n, bounds = pkts[i]
                data = stamp(packet, where, n)
                if rw is not None:
                    for a, b in bounds:
                        rw.append(data[a:b])
                i += 1
                sent += n
                counters["packets"] += 1
                if send is not None:
                    try:
                        send(data)
                    except BlockingIOError:
                        time.sleep(0.0002)
                        send(data)
                    except ConnectionRefusedError:
                        pass
                    continue
                books.apply_bytes(memoryview(data)[20:])
                if not conflator.conflating:
                    publish(now)  # every packet's changes, as they come
            if books is not None and conflator.conflating:
                now = time.monotonic()
                if conflator.due(now):
                    publish(now)
            await asyncio.sleep(0.001)
        if fast_since is not None:
            counters["seconds_at_rate"] = time.monotonic() - fast_since
            counters["updates_at_rate"] = counters["updates"] - counters.get("updates_before", 0)
            counters["messages_at_rate"] = sent - counters.get("messages_before", 0)
        counters["messages"] = sent
        counters["ran_out"] = int(i >= len(pkts))
        if rw is not None:
            counters["rewinder_requests"] = rw.counters["requests"]
            counters["rewinder_resent"] = rw.counters["messages_resent"]
        if sock is not None:
            for _ in range(3):
                sock.send(end_of_session(SESSION, sent + 1))
        if publisher is not None:
            await asyncio.sleep(0.2)
            await publisher.close()

    uvloop.run(main())
    report.put(counters)
    if sock is not None:
        sock.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
