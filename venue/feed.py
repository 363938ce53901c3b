"""The feed sender: the simulated exchange's stream paced onto UDP in MoldUDP64 packets (asyncio adapter).

``serve`` sends ``venue.simulator.ExchangeSimulator``'s messages at a given rate (with an optional ``Burst``)
to one or more lines (A/B, unicast or multicast), a heartbeat each idle second and End of Session at the
end; beside it, when asked, the rewinder (``venue.rewinder``) and the snapshot server
(``venue.glimpse_server``). ``tickfan simulate`` (``tickfan.simulate``) is its command line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ingest.moldudp64 import MAX_PAYLOAD, PacketBuilder, end_of_session, heartbeat
from ingest.udp import send_packet, sender_socket

from .glimpse_server import start_snapshot_server
from .rewinder import Rewinder
from .schedule import CalendarSchedule
from .simulator import ExchangeSimulator


class Burst(NamedTuple):
    """Multiply the rate by ``factor`` from ``start`` for ``seconds`` (the open at 9:30 ET, say)."""

    factor: float
    start: float
    seconds: float

    def factor_at(self, elapsed: float) -> float:
        return self.factor if self.start <= elapsed < self.start + self.seconds else 1.0

    @classmethod
    def parse(cls, text: str) -> Burst:
        """'10@5+5': ten times the rate, from 5 s after the start, for 5 s."""
        try:
            factor, rest = text.split("@")
            start, seconds = rest.split("+")
            burst = cls(float(factor), float(start), float(seconds))
        except ValueError:
            raise ValueError(f"expected FACTOR@START+SECONDS, e.g. 10@5+5, got {text!r}") from None
        if burst.factor <= 0 or burst.start < 0 or burst.seconds <= 0:
            raise ValueError(f"burst needs factor > 0, start >= 0, seconds > 0: {text!r}")
        return burst



END_OF_SESSION_REPEATS = 5


async def serve(targets: Sequence[tuple[str, int]], *, rate: float, symbols: int = 10_000, seed: int = 1,
                session: str = "TICKFAN001", duration: float | None = None, stop: asyncio.Event | None = None,
                max_payload: int = MAX_PAYLOAD, progress: Callable[[int, float, int], None] | None = None,
                simulator: ExchangeSimulator | None = None, interface: str = "127.0.0.1",
                rewinder: tuple[str, int] | None = None, history: int = 200_000,
                on_rewinder: Callable[[Rewinder], None] | None = None,
                snapshot: tuple[str, int] | None = None, burst: Burst | None = None,
                session_date: dt.date | None = None, close_after: float | None = None,
                schedule: CalendarSchedule | None = None) -> int:
    """Send the simulated feed at ``rate`` messages/s to every target (lines A, B, ...) until ``duration``
    or ``stop``; serve re-requests on ``rewinder`` from the last ``history`` messages; end market hours
    (``ExchangeSimulator.close_market``) ``close_after`` seconds in, if given; with ``schedule``, move the
    session through the exchange calendar's day (``venue.schedule``) on the wall clock. Returns messages sent.

    Pacing is a token bucket checked about every millisecond: each tick sends every message owed since
    the start, packed into MTU-sized packets, so the average rate is exact and nothing sleeps per message.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    sim = simulator or ExchangeSimulator(symbols, seed=seed, session_date=session_date)
    socks = [sender_socket(host, port, interface=interface) for host, port in targets]
    rw: Rewinder | None = None
    rw_transport: asyncio.DatagramTransport | None = None
    if rewinder is not None:
        rw = Rewinder(session, history, max_payload)
        rw_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: rw, local_addr=rewinder)
        if on_rewinder is not None:
            on_rewinder(rw)
    builder = PacketBuilder(session, max_payload=max_payload)
    keep = rw.append if rw is not None else None
    snapshot_server: asyncio.Server | None = None
    if snapshot is not None:
        snapshot_server = await start_snapshot_server(sim, lambda: builder.next_seq, *snapshot, session=session)
    stop = stop or asyncio.Event()
    start = time.monotonic()
    sent = packets = 0
    due = 0.0  # messages owed since the start, integrating the (possibly bursting) rate
    last_tick = start
    last_progress = start
    last_packet = start
    last_schedule = start

    def send(packet: bytes) -> None:
        for sock in socks:
            send_packet(sock, packet)

    try:
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            if close_after is not None and now - start >= close_after:
                sim.close_market()
                close_after = None
            if schedule is not None and now - last_schedule >= 1.0:
                last_schedule = now
                for event in schedule.due(dt.datetime.now(dt.UTC)):
                    sim.session_event(event)
            current = rate * burst.factor_at(now - start) if burst is not None else rate
            due += (now - last_tick) * current
            last_tick = now
            owed = min(int(due) - sent, max(1, int(current * 0.05)))
            if owed < 0:
                due = sent  # could not keep up: do not bank the shortfall, carry on at the asked rate
            if owed > 0:
                for msg in sim.generate_encoded(owed):
                    if keep is not None:
                        keep(msg)
                    packet = builder.add(msg)
                    if packet is not None:
                        send(packet)
                        packets += 1
                tail = builder.flush()
                if tail is not None:
                    send(tail)
                    packets += 1
                sent += owed
                last_packet = now
            elif now - last_packet >= 1.0:
                send(heartbeat(session, builder.next_seq))
                last_packet = now
            if progress is not None and now - last_progress >= 1.0:
                progress(sent, sent / max(now - start, 1e-9), packets)
                last_progress = now
            await asyncio.sleep(0.001)
    finally:
        try:
            # MoldUDP64 servers keep announcing End of Session: a receiver that lost the tail of the
            # stream (or the first announcement) learns the final sequence number and re-requests.
            eos = end_of_session(session, builder.next_seq)
            for _ in range(END_OF_SESSION_REPEATS):
                send(eos)
                await asyncio.sleep(0.02)
        finally:
            for sock in socks:
                sock.close()
            if rw_transport is not None or snapshot_server is not None:
                # Linger a moment so late re-requests for the session's tail can still be answered.
                await asyncio.sleep(0.2 if duration is not None else 0)
            if rw_transport is not None:
                rw_transport.close()
            if snapshot_server is not None:
                snapshot_server.close()
    return sent
