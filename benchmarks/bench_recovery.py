"""Time to fill a feed gap from the rewinder, over real UDP on loopback.

    .venv/bin/python benchmarks/bench_recovery.py [--gap 1000] [--gaps 20] [--rate 20000]

The simulator sends at --rate with a rewinder; a relay in front of the feed handler drops one burst of
packets at a time, chosen so at least --gap messages go missing. For each gap the handler's session
measures detection -> last missing message applied. Prints the median and p90 over all gaps.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.handler import open_feeds  # noqa: E402
from normalize import Books  # noqa: E402
from venue.feed import serve  # noqa: E402


class BurstDropper(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], gap: int) -> None:
        self.target = target
        self.gap = gap
        self.dropping = 0  # messages still to drop in the current burst
        self.transport: asyncio.DatagramTransport | None = None
        self.bursts = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def arm(self) -> None:
        self.dropping = self.gap
        self.bursts += 1

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        count = int.from_bytes(data[18:20], "big")
        if self.dropping > 0 and 0 < count < 0xFFFF:
            self.dropping -= count
            return
        assert self.transport is not None
        self.transport.sendto(data, self.target)


async def run(args: argparse.Namespace) -> None:
    books = Books()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        rewinder = ("127.0.0.1", s.getsockname()[1])
    handler = await open_feeds([("127.0.0.1", 0)], books.apply_batch, rewinder=rewinder, recovery_timeout=5.0)
    port = handler.lines[0].get_extra_info("sockname")[1]
    loop = asyncio.get_running_loop()
    dropper = BurstDropper(("127.0.0.1", port), args.gap)
    relay, _ = await loop.create_datagram_endpoint(lambda: dropper, local_addr=("127.0.0.1", 0))
    relay_port = relay.get_extra_info("sockname")[1]
    for i in range(args.gaps):
        loop.call_later(1.0 + i * 0.5, dropper.arm)
    await serve([("127.0.0.1", relay_port)], rate=args.rate, symbols=1000, seed=3, duration=1.5 + args.gaps * 0.5,
                rewinder=rewinder, history=max(200_000, args.gap * 10))
    await asyncio.sleep(0.5)
    relay.close()
    handler.close()
    c = handler.session.counters
    times = sorted(t * 1000 for t in handler.session.recovery_seconds)
    print(f"gaps {c['gaps']}, recoveries {c['recoveries']}, messages recovered {c['messages_recovered']:,}, "
          f"requests {c['requests_sent']}, failures {c['recovery_failures']}, missed {c['messages_missed']}")
    if times:
        p90 = times[int(0.9 * (len(times) - 1))]
        print(f"time to fill a gap of >= {args.gap:,} messages: median {statistics.median(times):.2f} ms, "
              f"p90 {p90:.2f} ms, max {times[-1]:.2f} ms over {len(times)} gaps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gap", type=int, default=1000, help="messages lost per gap (default %(default)s)")
    parser.add_argument("--gaps", type=int, default=20, help="how many gaps (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20_000, help="feed rate msg/s (default %(default)s)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
