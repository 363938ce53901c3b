"""What the live account's trigger (migration 012) costs a placement: sequential ``Ledger.place`` of resting limit
buys on the test shards (``TICKFAN_TEST_DB``), with ``journal_account_changed`` enabled and disabled in turn, four
interleaved rounds of 300; prints each round's median and the median of rounds. Run from the repository root:

    PYTHONPATH=$PWD TICKFAN_TEST_DB=tickfan_bench_acct .venv/bin/python benchmarks/bench_account_trigger.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from order_api.db import Ledger, migrate  # noqa: E402
from order_api.model import OrderRequest  # noqa: E402
from tests.order_api.conftest import QUOTES, TEST_DSNS  # noqa: E402

N = 300



async def main() -> None:
    await migrate(TEST_DSNS)
    ledger = await Ledger.connect(TEST_DSNS, max_size=4)
    users = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    for u in users:
        await ledger.deposit(u, 10**12)

    async def toggle(on: bool) -> None:
        for pool in ledger.pools:
            await pool.execute(f"ALTER TABLE journal {'ENABLE' if on else 'DISABLE'} TRIGGER journal_account_changed")
    res: dict[bool, list[float]] = {True: [], False: []}
    try:
        for rnd in range(4):
            for on in (True, False):
                await toggle(on)
                times = []
                for i in range(N):
                    u = users[i % len(users)]
                    req = OrderRequest("AAPL", "buy", 1, "limit", 1_800_000, "day", uuid.uuid4().hex)
                    t = time.perf_counter()
                    await ledger.place(u, req, QUOTES["AAPL"])
                    times.append(time.perf_counter() - t)
                res[on].append(statistics.median(times) * 1000)
                print(f"round {rnd} trigger {'on ' if on else 'off'}: median {res[on][-1]:.2f} ms", flush=True)
    finally:
        await toggle(True)
        await ledger.close()
    on, off = statistics.median(res[True]), statistics.median(res[False])
    print(f"medians of rounds: on {on:.2f} ms, off {off:.2f} ms")



if __name__ == "__main__":
    asyncio.run(main())
