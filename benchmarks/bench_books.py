"""Books apply rate: decoded ITCH messages per second through ``Books.apply_batch`` on one core.

The feed is generated here (ingest's simulator is timed separately in bench_ingest.py) from a realistic
TotalView mix: adds and deletes dominate, replaces next, then cancels, executions and trade prints, with
order prices clustered a few ticks around each symbol's mid and a steady-state live book per symbol.
Messages are fed in packet-sized batches, as the feed handler does. Generation is not timed.

    .venv/bin/python benchmarks/bench_books.py --messages 500000 --runs 5
    .venv/bin/python benchmarks/bench_books.py --engine shm-plain,shm-batched --rounds 3   # a shared-memory writer

``--engine``: ``plain`` (``Books``), ``shm-plain`` (a shared-memory ingest worker as before issue 13:
``ShmPublisher.apply_batch``, message by message, publishing each packet's depth and names) or ``shm-batched``
(``ShmPublisher(batched=True).apply_bytes``: a packet's bytes through the numba kernel, its changed depth
written by one compiled call). The shared-memory engines include what readers need: the writer's generation
bracket, claims, names, depth and the prints ring. Several engines run interleaved, ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from ingest import messages as im
from normalize import Books

TICK = 100  # $0.01 in 4-implied-decimal units


def directory(locate: int) -> im.StockDirectory:
    return im.StockDirectory(locate, 0, 0, f"S{locate:04d}", "Q", "N", 100, "N", "C", "Z ", "P", "N", "N", "1",
                          "N", 0, "N")


def generate(n_messages: int, n_symbols: int, live_per_symbol: int, seed: int) -> list[im.Message]:
    """A feed of ``n_messages`` after the directory, shaped like a TotalView day's message mix."""
    rng = random.Random(seed)
    msgs: list[im.Message] = [directory(loc) for loc in range(1, n_symbols + 1)]
    mid = {loc: rng.randrange(1_000, 50_000) * TICK for loc in range(1, n_symbols + 1)}
    live: dict[int, list[int]] = {loc: [] for loc in mid}  # locate -> live refs (swap-remove)
    orders: dict[int, list[int]] = {}  # ref -> [locate, side, price, shares]
    next_ref, match, ts = 1, 1, 34_200_000_000_000

    def remove(loc: int, ref: int) -> None:
        refs = live[loc]
        i = refs.index(ref) if refs[-1] != ref else len(refs) - 1
        refs[i] = refs[-1]
        refs.pop()
        del orders[ref]

    def quote_price(loc: int, side: int) -> int:
        away = min(int(rng.expovariate(0.35)), 40)  # most adds at or next to the inside
        return mid[loc] - (1 + away) * TICK if side == 0 else mid[loc] + (1 + away) * TICK

    while len(msgs) < n_messages + n_symbols:
        ts += rng.randrange(1_000, 20_000)
        loc = rng.randrange(1, n_symbols + 1)
        refs = live[loc]
        x = rng.random()
        want_add = len(refs) < live_per_symbol // 2 or (len(refs) < 2 * live_per_symbol and x < 0.42)
        if not refs or want_add:
            side = rng.randrange(2)
            price, shares = quote_price(loc, side), 100 * rng.randrange(1, 10)
            orders[next_ref] = [loc, side, price, shares]
            refs.append(next_ref)
            msgs.append(im.AddOrder(loc, 0, ts, next_ref, "BS"[side], shares, f"S{loc:04d}", price,
                                 "MPID" if rng.random() < 0.03 else None))
            next_ref += 1
            continue
        ref = refs[rng.randrange(len(refs))]
        o = orders[ref]
        y = rng.random()
        if y < 0.70:
            msgs.append(im.OrderDelete(loc, 0, ts, ref))
            remove(loc, ref)
        elif y < 0.85:
            price, shares = quote_price(loc, o[1]), 100 * rng.randrange(1, 10)
            msgs.append(im.OrderReplace(loc, 0, ts, ref, next_ref, shares, price))
            remove(loc, ref)
            orders[next_ref] = [loc, o[1], price, shares]
            refs.append(next_ref)
            next_ref += 1
        elif y < 0.90:
            n = min(o[3], 100 * rng.randrange(1, 4))
            msgs.append(im.OrderCancel(loc, 0, ts, ref, n))
            o[3] -= n
            if o[3] == 0:
                remove(loc, ref)
        elif y < 0.96:
            n = min(o[3], 100 * rng.randrange(1, 4))
            match += 1
            if rng.random() < 0.9:
                msgs.append(im.OrderExecuted(loc, 0, ts, ref, n, match))
            else:
                msgs.append(im.OrderExecutedWithPrice(loc, 0, ts, ref, n, match, "YN"[rng.random() < 0.2], o[2]))
            o[3] -= n
            if o[3] == 0:
                remove(loc, ref)
            mid[loc] += TICK * rng.choice((-1, 0, 1))
        elif y < 0.995:
            match += 1
            msgs.append(im.Trade(loc, 0, ts, 0, "B", 100 * rng.randrange(1, 5), f"S{loc:04d}", mid[loc], match))
        elif y < 0.998:
            match += 1
            msgs.append(im.CrossTrade(loc, 0, ts, 100 * rng.randrange(0, 50), f"S{loc:04d}", mid[loc], match, "O"))
        else:
            msgs.append(im.TradingAction(loc, 0, ts, f"S{loc:04d}", "HT"[rng.random() < 0.5], " ", "    "))
    return msgs


def batches(msgs: list[im.Message], size: int) -> list[list[im.Message]]:
    return [msgs[i:i + size] for i in range(0, len(msgs), size)]


def run_once(packets: list[list[im.Message]], engine: str = "plain") -> tuple[float, Books]:
    if engine == "plain":
        books = Books()
        apply_batch = books.apply_batch
        start = time.perf_counter()
        for packet in packets:
            apply_batch(packet)
        return time.perf_counter() - start, books
    from ingest.itch import encode
    from normalize.replicas.shm import SharedBookState, ShmPublisher
    from vocab.framing import frame_all

    state = SharedBookState.create()
    try:
        publisher = ShmPublisher(state, 0, batched=engine == "shm-batched")
        if engine == "shm-batched":
            blocks = [frame_all(encode(m) for m in packet) for packet in packets]  # the wire's bytes: not timed
            apply_bytes = publisher.apply_bytes
            start = time.perf_counter()
            for block in blocks:
                apply_bytes(block)
        elif engine == "shm-plain":
            apply_batch = publisher.apply_batch
            start = time.perf_counter()
            for packet in packets:
                apply_batch(packet)
        else:
            raise SystemExit(f"unknown engine {engine!r}")
        return time.perf_counter() - start, publisher.books
    finally:
        state.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=500_000, help="order/trade messages to generate")
    p.add_argument("--symbols", type=int, default=1_000, help="stock locates in the feed")
    p.add_argument("--live", type=int, default=40, help="steady-state live orders per symbol")
    p.add_argument("--batch", type=int, default=32, help="messages per apply_batch call (one MoldUDP64 packet)")
    p.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--engine", default="plain", help="comma list of plain, shm-plain, shm-batched (see above)")
    p.add_argument("--rounds", type=int, default=1, help="with several engines: each runs --runs times per round, "
                   "the rounds interleaved")
    a = p.parse_args(argv)

    msgs = generate(a.messages, a.symbols, a.live, a.seed)
    packets = batches(msgs, a.batch)
    kinds: dict[str, int] = {}
    for m in msgs:
        kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
    print(f"{len(msgs):,} messages in {len(packets):,} batches of {a.batch}: "
          + ", ".join(f"{k} {v / len(msgs):.1%}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    engines = [e.strip() for e in a.engine.split(",") if e.strip()]
    rates: dict[str, list[float]] = {e: [] for e in engines}
    for _ in range(a.rounds):
        for engine in engines:
            for _ in range(a.runs):
                elapsed, books = run_once(packets, engine)
                rates[engine].append(len(msgs) / elapsed)
                print(f"{engine} run {len(rates[engine])}: {rates[engine][-1]:,.0f} msg/s", flush=True)
            bad = {k: v for k, v in books.counters.items() if v and k not in ("messages", "system_events")}
            print(f"  trade prints {books.trades_total:,}; live orders at end {books.order_count:,}; counters {bad}")
    for engine in engines:
        median = statistics.median(rates[engine])
        print(f"{engine}: median {median:,.0f} msg/s over {len(rates[engine])} runs "
              f"({1e6 / median:.2f} µs a message)")


if __name__ == "__main__":
    main()
