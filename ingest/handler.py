"""Feed handler: the asyncio adapter around ``FeedSession`` (thin I/O).

Datagrams from every line (A/B) and from the re-request server go to one session, which keeps them in
sequence; the messages it yields go to the sink (normally ``normalize.Books.apply_batch``). Re-requests the
session asks for are sent from a dedicated unicast socket to the rewinder, whose answers come back to that
same socket. A timer lets the session retry and, past its recovery timeout, give up on a hole; the
``on_stale`` callback then tells the books they can no longer be vouched for. A failing sink is counted
and logged, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence

from . import glimpse
from .messages import Message, StockDirectory
from .moldudp64 import encode_request
from .partition import PartitionFilter
from .session import FeedSession, State
from .udp import is_multicast

log = logging.getLogger("tickfan.ingest")
Sink = Callable[[list[Message]], None]
RCVBUF_BYTES = 8 << 20
POLL_INTERVAL = 0.02


class FeedHandler(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink, session: FeedSession, *, rewinder: tuple[str, int] | None = None,
                 on_stale: Callable[[bool], None] | None = None, snapshot: tuple[str, int] | None = None,
                 on_snapshot: Callable[[list[Message]], None] | None = None,
                 raw_sink: Callable[[bytes], object] | None = None) -> None:
        self.sink = sink
        # batched consumers (``KernelBooks.apply_bytes``) take in-sequence packets' blocks undecoded, gathered
        # over one turn of the event loop: every datagram ready now goes in one call
        self.raw_sink = raw_sink
        self._raw: list[bytes] = []
        self._raw_flush_scheduled = False
        self.session = session
        self.rewinder = rewinder
        self.on_stale = on_stale
        self.snapshot = snapshot
        self.on_snapshot = on_snapshot
        self.rebuilds = 0
        self.rebuild_failures = 0
        self._rebuilding: asyncio.Task[None] | None = None
        self.sink_errors = 0
        self.lines: list[asyncio.DatagramTransport] = []
        self.request_transport: asyncio.DatagramTransport | None = None
        self._stale = False
        self._last_log = 0.0
        self._poller: asyncio.Task[None] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        session = self.session
        if self.raw_sink is not None:
            blocks = session.take_raw(data)
            if blocks is not None:
                self._raw.append(blocks)
                if not self._raw_flush_scheduled:
                    self._raw_flush_scheduled = True
                    asyncio.get_running_loop().call_soon(self.flush_raw)
                return
            self.flush_raw()  # keep order: what was gathered goes before anything on the general path
        gaps = session.counters["gaps"]
        messages = session.on_packet(data, time.monotonic())
        if session.counters["gaps"] != gaps:
            self._log_gap()
        self._deliver(messages)
        if session.state is State.RECOVERING:
            self._send_requests()

    def flush_raw(self) -> None:
        self._raw_flush_scheduled = False
        if not self._raw:
            return
        batch = b"".join(self._raw)
        self._raw.clear()
        assert self.raw_sink is not None
        try:
            self.raw_sink(batch)
        except Exception:
            self.sink_errors += 1
            log.exception("batched sink failed on %d bytes", len(batch))

    def _deliver(self, messages: list[Message]) -> None:
        if messages:
            try:
                self.sink(messages)
            except Exception:  # a bug downstream must not stop the feed
                self.sink_errors += 1
                log.exception("sink failed on a batch of %d messages", len(messages))
        if self.session.needs_rebuild != self._stale:
            self._stale = self.session.needs_rebuild
            if self._stale:
                log.warning("feed recovery failed: books are stale until rebuilt from a snapshot")
            if self.on_stale is not None:
                self.on_stale(self._stale)
        if self._stale and self.snapshot is not None and self.on_snapshot is not None and self._rebuilding is None:
            self._rebuilding = asyncio.get_running_loop().create_task(self._rebuild())

    async def _rebuild(self) -> None:
        """Fetch a snapshot while holding live messages, swap the books, then replay what was held."""
        assert self.snapshot is not None and self.on_snapshot is not None
        session = self.session
        session.begin_rebuild()
        try:
            reader = glimpse.SnapshotReader()
            r, w = await asyncio.wait_for(asyncio.open_connection(*self.snapshot), 5)
            try:
                while not reader.done:
                    data = await asyncio.wait_for(r.read(1 << 16), 10)
                    if not data:
                        raise ConnectionError("snapshot stream ended before End of Snapshot")
                    reader.feed(data)
            finally:
                w.close()
            assert reader.next_seq is not None
            self.on_snapshot(self._mine(reader.messages))
            held = session.rebuilt(reader.next_seq, time.monotonic())
            self.rebuilds += 1
            log.warning("books rebuilt from a snapshot of %d messages at seq %d", len(reader.messages),
                        reader.next_seq)
            self._deliver(held)
            self._send_requests()
        except (TimeoutError, OSError, ConnectionError, ValueError) as exc:
            self.rebuild_failures += 1
            log.warning("snapshot from %s:%d failed: %s; still stale, retrying", *self.snapshot, exc)
            self._deliver(session.abort_rebuild(time.monotonic()))
            await asyncio.sleep(1.0)
        finally:
            self._rebuilding = None
            if session.needs_rebuild and self.on_snapshot is not None:
                self._deliver([])  # try again

    def _mine(self, messages: list[Message]) -> list[Message]:
        """A snapshot holds every symbol: keep only this partition's, as the live path does."""
        part = self.session.partition
        if part is None:
            return messages
        kept: list[Message] = []
        for m in messages:
            if isinstance(m, StockDirectory):
                if part.learn(m.locate, m.stock):
                    kept.append(m)
            elif m.locate == 0 or part.accept[m.locate]:
                kept.append(m)
        return kept

    def _send_requests(self) -> None:
        requests = self.session.take_requests()
        if not requests or self.rewinder is None or self.request_transport is None:
            return
        for r in requests:
            self.request_transport.sendto(encode_request(r.session, r.first_seq, r.message_count), self.rewinder)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if self.session.state is State.RECOVERING:
                self._deliver(self.session.poll(time.monotonic()))
                self._send_requests()

    def _log_gap(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= 1.0:  # at most one line a second under a storm of losses
            gap = self.session.missing[-1]
            c = self.session.counters
            log.warning("feed gap: %d message(s) from seq %d missing (gaps %d so far); %s",
                        gap.length, gap.first_seq, c["gaps"],
                        f"re-requesting from {self.rewinder[0]}:{self.rewinder[1]}" if self.rewinder
                        else "no rewinder configured")
            self._last_log = now

    def error_received(self, exc: Exception) -> None:
        log.warning("feed socket error: %s", exc)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._rebuilding is not None:
            self._rebuilding.cancel()
        for t in self.lines:
            t.close()
        if self.request_transport is not None:
            self.request_transport.close()


def bind_feed_socket(host: str, port: int, *, interface: str = "127.0.0.1") -> socket.socket:
    """A UDP socket bound to (host, port); a multicast group is joined on ``interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        except OSError:
            pass  # best effort: the kernel caps it at net.core.rmem_max
        if is_multicast(host):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            mreq = struct.pack("4s4s", socket.inet_aton(host), socket.inet_aton(interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        else:
            sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_feeds(lines: Sequence[tuple[str, int]], sink: Sink, *, session: str | None = None,
                     interface: str = "127.0.0.1", rewinder: tuple[str, int] | None = None,
                     on_stale: Callable[[bool], None] | None = None,
                     recovery_timeout: float = 2.0, snapshot: tuple[str, int] | None = None,
                     on_snapshot: Callable[[list[Message]], None] | None = None,
                     partition: PartitionFilter | None = None,
                     raw_sink: Callable[[bytes], object] | None = None) -> FeedHandler:
    """Listen on every line of one MoldUDP64 session (A/B: the first copy of each message wins)."""
    loop = asyncio.get_running_loop()
    feed_session = FeedSession(session, recovery_timeout=recovery_timeout, partition=partition)
    handler = FeedHandler(sink, feed_session, rewinder=rewinder, on_stale=on_stale, snapshot=snapshot,
                          on_snapshot=on_snapshot, raw_sink=raw_sink)
    try:
        for host, port in lines:
            sock = bind_feed_socket(host, port, interface=interface)
            transport, _ = await loop.create_datagram_endpoint(lambda: handler, sock=sock)
            handler.lines.append(transport)
        if rewinder is not None:
            handler.request_transport, _ = await loop.create_datagram_endpoint(
                lambda: handler, local_addr=("0.0.0.0" if rewinder[0] not in ("127.0.0.1", "localhost")
                                             else "127.0.0.1", 0))
            answers = handler.request_transport.get_extra_info("socket")
            if answers is not None:  # re-sent packets arrive in bursts of a window of requests
                with contextlib.suppress(OSError):
                    answers.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    except BaseException:
        handler.close()
        raise
    handler._poller = asyncio.create_task(handler._poll())
    return handler


async def open_feed(host: str, port: int, sink: Sink, *, session: str | None = None,
                    interface: str = "127.0.0.1") -> tuple[asyncio.DatagramTransport, FeedHandler]:
    """Listen on one line (unicast, or a multicast group joined on ``interface``); no rewinder.

    Port 0 binds an ephemeral port: read it from ``transport.get_extra_info("sockname")``. Close with
    ``handler.close()`` (which also stops the recovery timer), not just the transport.
    """
    handler = await open_feeds([(host, port)], sink, session=session, interface=interface)
    return handler.lines[0], handler
