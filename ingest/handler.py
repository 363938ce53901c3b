"""Feed handler: the asyncio adapter around ``FeedSession`` (thin I/O).

Datagrams from every line (A/B) and from the re-request server go to one session, which keeps them in
sequence; the messages it yields go to the sink (normally ``normalize.Books.apply_batch``), or, for batched
books (``raw_sink``, e.g. ``KernelBooks.apply_bytes``), undecoded blocks gathered into one call per turn of
the event loop. Re-requests the session asks for are sent from a dedicated unicast socket to the rewinder,
whose answers come back to that same socket. A timer lets the session retry and, past its recovery timeout,
give up on a hole; the ``on_stale`` callback then tells the books they can no longer be vouched for. A
failing sink is counted and logged, never fatal.

Hostile datagrams: with ``sources`` set, a feed line takes datagrams only from those addresses (any other is
counted as ``foreign_source`` and dropped before it is sequenced); the re-request socket is bound to the
loopback or the given interface and ``connect()``-ed to the rewinder, so the kernel itself drops an answer
from anyone else. A session with no name (``adopt_session=False``) fetches a snapshot at once and takes the
session the snapshot names.

Reading comes first: each socket is read until it is empty (up to ``READ_BATCH`` datagrams a turn), and
the batched books are given at most ``FLUSH_BYTES`` a turn, so under a burst the backlog waits in a bounded
queue here (``MAX_QUEUED_BYTES``, far more than the kernel's receive buffer, which ``net.core.rmem_max``
caps) rather than overflowing the socket. When that queue is full, datagrams are dropped before they are
sequenced (``dropped_datagrams``), exactly as a full socket would drop them: the gap is then recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from vocab.addr import is_multicast

from . import glimpse
from .messages import Message
from .moldudp64 import encode_request
from .partition import PartitionFilter
from .recovery import DEFAULT_MAX_HELD_BYTES
from .session import DEFAULT_MAX_GAP, FeedSession, State

log = logging.getLogger("tickfan.ingest")
Sink = Callable[[list[Message]], None]
# where feed datagrams may come from: (host, port), port None for any port of that host
Source = tuple[str, int | None]
RCVBUF_BYTES = 8 << 20
POLL_INTERVAL = 0.02
READ_BATCH = 1024  # datagrams read from one socket per turn of the loop, at most
FLUSH_BYTES = 256 << 10  # bytes of blocks given to the batched books per turn (~8,000 messages, a few ms)
MAX_QUEUED_BYTES = 64 << 20  # blocks sequenced and waiting for the batched books (~2M messages)
MAX_DATAGRAM = 65536


class Line:
    """One UDP socket read by the handler (a feed line, or the re-request socket); transport-like enough for
    ``get_extra_info("sockname")`` and ``close()``."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop,
                 on_readable: Callable[[socket.socket], None]) -> None:
        self.sock = sock
        self._loop = loop
        self._closed = False
        loop.add_reader(sock.fileno(), on_readable, sock)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self.sock
        if name == "sockname":
            return self.sock.getsockname()
        return default

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # the loop may already be closed
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


class FeedHandler:
    def __init__(self, sink: Sink, session: FeedSession, *, rewinder: tuple[str, int] | None = None,
                 on_stale: Callable[[bool], None] | None = None, snapshot: tuple[str, int] | None = None,
                 on_snapshot: Callable[[list[Message]], None] | None = None,
                 raw_sink: Callable[[bytes], object] | None = None,
                 sources: Sequence[Source] | None = None, partition: PartitionFilter | None = None) -> None:
        """``partition``: the symbols a snapshot is cut down to (the session's own filter if it has one)."""
        self.sink = sink
        self.partition = partition if partition is not None else session.partition
        # None: any source (no --feed-source given); else the hosts allowed on any port, and exact addresses
        self.sources = list(sources) if sources is not None else None
        self._source_hosts = frozenset(h for h, p in sources or () if p is None)
        self._source_addrs = frozenset((h, p) for h, p in sources or () if p is not None)
        # batched consumers take blocks undecoded, from a session made with raw=True (without it, decoded
        # messages go to ``sink`` as usual)
        self.raw_sink = raw_sink if session.raw else None
        self._queue: list[bytes] = []
        self._queued_bytes = 0
        self._flush_scheduled = False
        self.dropped_datagrams = 0  # dropped unsequenced because the batched books were too far behind
        self.session = session
        self.rewinder = rewinder
        self.on_stale = on_stale
        self.snapshot = snapshot
        self.on_snapshot = on_snapshot
        self.rebuilds = 0
        self.rebuild_failures = 0
        self._rebuilding: asyncio.Task[None] | None = None
        self.sink_errors = 0
        self.lines: list[Line] = []
        self.request_line: Line | None = None
        self._stale = False
        self._last_log = 0.0
        self._poller: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ input
    def readable(self, sock: socket.socket) -> None:
        """A feed line has datagrams: read them all (up to ``READ_BATCH``), then let the books have a turn.
        With ``sources`` set, a datagram from anywhere else is counted (``foreign_source``) and dropped."""
        if self.sources is None:
            return self.readable_connected(sock)
        recv = sock.recvfrom
        on_datagram = self.datagram_received
        hosts, addrs = self._source_hosts, self._source_addrs
        counters = self.session.counters
        for _ in range(READ_BATCH):
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("feed socket error: %s", exc)
                break
            if addr[0] not in hosts and (addr[0], addr[1]) not in addrs:
                counters["foreign_source"] += 1
                continue
            on_datagram(data)
        return None

    def readable_connected(self, sock: socket.socket) -> None:
        """Read a socket whose sources are not checked here: a feed line open to any source, or the
        re-request socket (connected to the rewinder: the kernel drops datagrams from anyone else)."""
        recv = sock.recv
        on_datagram = self.datagram_received
        for _ in range(READ_BATCH):
            try:
                data = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable on the request socket
                log.debug("feed socket error: %s", exc)
                break
            on_datagram(data)

    def datagram_received(self, data: bytes, addr: object = None) -> None:
        session = self.session
        if self.raw_sink is not None:
            if self._queued_bytes >= MAX_QUEUED_BYTES:
                self.dropped_datagrams += 1  # as a full socket buffer would: the gap is recovered later
                return
            blocks = session.take_raw(data)
            if blocks is not None:
                self._enqueue(blocks)
                return
        gaps = session.counters["gaps"]
        messages = session.on_packet(data, time.monotonic())
        if session.counters["gaps"] != gaps:
            self._log_gap()
        self._deliver(messages)
        if session.state is State.RECOVERING:
            self._send_requests()

    # ------------------------------------------------------------------ output
    def _enqueue(self, blocks: bytes) -> None:
        self._queue.append(blocks)
        self._queued_bytes += len(blocks)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_raw)

    @property
    def queued_bytes(self) -> int:
        """Blocks sequenced but not yet given to the batched books."""
        return self._queued_bytes

    def flush_raw(self, limit: int = FLUSH_BYTES) -> None:
        """Give the batched books up to ``limit`` bytes of what is queued, in order; come back for the rest
        next turn, after the sockets have been read again."""
        self._flush_scheduled = False
        queue = self._queue
        if not queue:
            return
        taken = 0
        n = 0
        while n < len(queue) and (n == 0 or taken + len(queue[n]) <= limit):
            taken += len(queue[n])
            n += 1
        batch = queue[0] if n == 1 else b"".join(queue[:n])
        del queue[:n]
        self._queued_bytes -= taken
        if queue:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_raw)
        self._apply(batch)

    def _apply(self, batch: bytes) -> None:
        assert self.raw_sink is not None
        try:
            self.raw_sink(batch)
        except Exception:
            self.sink_errors += 1
            log.exception("batched sink failed on %d bytes", len(batch))

    def _flush_all(self) -> None:
        if self._queue:
            batch = b"".join(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._apply(batch)

    def _deliver(self, messages: list[Message]) -> None:
        if self.raw_sink is not None:
            for blocks in self.session.take_ready():
                self._enqueue(blocks)
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
            if session.session is None:
                if reader.session is None:
                    raise ValueError("the snapshot names no session, and none was configured (--session)")
                session.pin_session(reader.session)
                log.warning("feed session %r pinned from the snapshot", reader.session)
            elif reader.session is not None and reader.session != session.session:
                raise ValueError(f"snapshot of session {reader.session!r}, the feed is {session.session!r}")
            # blocks still queued for the batched books came before the snapshot: it supersedes them
            self._queue.clear()
            self._queued_bytes = 0
            # a snapshot holds every symbol: keep only this partition's, as the live path does
            part = self.partition
            self.on_snapshot(reader.messages if part is None else part.keep(reader.messages))
        except (TimeoutError, OSError, ConnectionError, ValueError) as exc:
            self.rebuild_failures += 1
            log.warning("snapshot from %s:%d failed: %s; still stale, retrying", *self.snapshot, exc)
            self._deliver(session.abort_rebuild(time.monotonic()))
            await asyncio.sleep(1.0)
        else:  # the session leaves REBUILDING exactly once: here, or by abort_rebuild above
            held = session.rebuilt(reader.next_seq, time.monotonic())
            self.rebuilds += 1
            log.warning("books rebuilt from a snapshot of %d messages at seq %d", len(reader.messages),
                        reader.next_seq, extra={"session": session.session, "seq": reader.next_seq})
            self._deliver(held)
            self._send_requests()
        finally:
            self._rebuilding = None
            if session.needs_rebuild and self.on_snapshot is not None:
                self._deliver([])  # try again

    def _send_requests(self) -> None:
        requests = self.session.take_requests()
        if not requests or self.rewinder is None or self.request_line is None:
            return
        sock = self.request_line.sock
        for r in requests:
            try:
                sock.send(encode_request(r.session, r.first_seq, r.message_count))
            except OSError as exc:  # a lost request is a lost datagram: the session retries
                log.debug("re-request not sent: %s", exc)

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
                        else "no rewinder configured",
                        extra={"session": self.session.session, "seq": gap.first_seq})
            self._last_log = now

    def close(self) -> None:
        """Stop listening; what has been sequenced and queued is given to the books first."""
        if self._poller is not None:
            self._poller.cancel()
        if self._rebuilding is not None:
            self._rebuilding.cancel()
        for line in self.lines:
            line.close()
        if self.request_line is not None:
            self.request_line.close()
        if self.raw_sink is not None:
            self._flush_all()


def _rcvbuf(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    except OSError:
        pass  # best effort: the kernel caps it at net.core.rmem_max


def bind_feed_socket(host: str, port: int, *, interface: str = "127.0.0.1") -> socket.socket:
    """A UDP socket bound to (host, port); a multicast group is joined on ``interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        _rcvbuf(sock)
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
                     raw_sink: Callable[[bytes], object] | None = None,
                     sources: Sequence[Source] | None = None, max_gap: int = DEFAULT_MAX_GAP,
                     max_held_bytes: int = DEFAULT_MAX_HELD_BYTES, adopt_session: bool = True) -> FeedHandler:
    """Listen on every line of one MoldUDP64 session (A/B: the first copy of each message wins).

    With ``raw_sink``, in-sequence messages go to it as undecoded blocks of every symbol (with a ``partition``,
    the raw sink filters them itself with the same filter, e.g. ``KernelBooks(partition=...)``: the snapshot's
    directory teaches it too); ``sink`` then only sees a snapshot's messages. Without, decoded messages go to
    ``sink``, only the partition's if there is one. ``sources``: the only addresses feed
    datagrams are taken from (None: any). ``session`` None and ``adopt_session`` False: the session is
    pinned from the first snapshot, fetched at once (``snapshot`` is then required).
    """
    if session is None and not adopt_session and snapshot is None:
        raise ValueError("a feed with no session name needs a snapshot server to learn it from")
    loop = asyncio.get_running_loop()
    raw = raw_sink is not None
    feed_session = FeedSession(session, recovery_timeout=recovery_timeout, partition=None if raw else partition,
                               raw=raw, max_gap=max_gap, max_held_bytes=max_held_bytes, adopt_session=adopt_session)
    handler = FeedHandler(sink, feed_session, rewinder=rewinder, on_stale=on_stale, snapshot=snapshot,
                          on_snapshot=on_snapshot, raw_sink=raw_sink, sources=sources, partition=partition)
    try:
        for host, port in lines:
            handler.lines.append(Line(bind_feed_socket(host, port, interface=interface), loop, handler.readable))
        if rewinder is not None:
            handler.request_line = Line(request_socket(rewinder, interface), loop, handler.readable_connected)
    except BaseException:
        handler.close()
        raise
    handler._poller = asyncio.create_task(handler._poll())
    if feed_session.needs_rebuild:
        handler._deliver([])  # no session name yet: fetch the snapshot that names it
    return handler


def request_socket(rewinder: tuple[str, int], interface: str = "127.0.0.1") -> socket.socket:
    """The re-request socket: bound to the loopback (a rewinder on this host) or to ``interface``, and
    connected to the rewinder, so the kernel drops any datagram from another address: a forged "answer"
    never reaches the session. (A loopback ``interface`` cannot reach a remote rewinder: the route picks.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _rcvbuf(sock)  # answers arrive in bursts of a window of requests
        host = socket.gethostbyname(rewinder[0])
        if host.startswith("127."):
            local = "127.0.0.1"
        else:
            local = "0.0.0.0" if interface.startswith("127.") else interface
        sock.bind((local, 0))
        sock.connect((host, rewinder[1]))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_feed(host: str, port: int, sink: Sink, *, session: str | None = None,
                    interface: str = "127.0.0.1") -> tuple[Line, FeedHandler]:
    """Listen on one line (unicast, or a multicast group joined on ``interface``); no rewinder.

    Port 0 binds an ephemeral port: read it from ``line.get_extra_info("sockname")``. Close with
    ``handler.close()`` (which also stops the recovery timer), not just the line.
    """
    handler = await open_feeds([(host, port)], sink, session=session, interface=interface)
    return handler.lines[0], handler
