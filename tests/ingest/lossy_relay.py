"""A UDP relay that loses, duplicates and reorders packets on purpose (a test tool, loopback only)."""

from __future__ import annotations

import asyncio
import random


class LossyRelay(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], *, drop: float = 0.0, duplicate: float = 0.0,
                 reorder: float = 0.0, seed: int = 7) -> None:
        self.target = target
        self.drop, self.duplicate, self.reorder = drop, duplicate, reorder
        self.rng = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.held: bytes | None = None
        self.dead = False  # a cut line forwards nothing
        self.counts = {"in": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
        self.drop_next = 0  # drop the next N packets outright (a burst)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        assert self.transport is not None
        self.counts["in"] += 1
        if self.dead:
            return
        if self.drop_next > 0:
            self.drop_next -= 1
            self.counts["dropped"] += 1
            return
        r = self.rng.random()
        if r < self.drop:
            self.counts["dropped"] += 1
            return
        if r < self.drop + self.reorder and self.held is None:
            self.held = data  # goes out after the next packet
            self.counts["reordered"] += 1
            return
        self.transport.sendto(data, self.target)
        if self.held is not None:
            self.transport.sendto(self.held, self.target)
            self.held = None
        if self.rng.random() < self.duplicate:
            self.transport.sendto(data, self.target)
            self.counts["duplicated"] += 1


async def start_relay(target: tuple[str, int], **kw: float) -> tuple[asyncio.DatagramTransport, LossyRelay, int]:
    loop = asyncio.get_running_loop()
    relay = LossyRelay(target, **kw)  # type: ignore[arg-type]
    transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    return transport, relay, transport.get_extra_info("sockname")[1]
