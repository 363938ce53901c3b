"""``tickfan market-maker``: its flags, and the command itself as a process (serves, reports, stops on SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys

import pytest

from order_api.fix import NewOrder
from order_api.fix.client import FixClient
from tests.conftest import WAIT
from tests.order_api.fix.conftest import Reports, done
from tickfan.market_maker import add_arguments


def test_every_flag_has_help() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.option_strings
    args = parser.parse_args(["--listen", ":0", "--latency-ms", "3", "--reject-rate", "0.5", "--drop-after", "4",
                              "--down-schedule", "10/2", "--static-quotes", "AAPL=1x1/2x2"])
    assert args.listen == ("127.0.0.1", 0) and args.down_schedule == (10.0, 2.0)
    for bad in (["--reject-rate", "2"], ["--down-schedule", "10"], ["--listen", "x:y"], ["--drop-after", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


@pytest.mark.anyio
async def test_command_runs_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickfan", "market-maker", "--listen", "127.0.0.1:0", "--static-quotes",
        "AAPL=189.25x300/189.26x100", "--status-interval", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert m, first
        reports = Reports()
        client = FixClient("127.0.0.1", int(m.group(1)), on_report=reports)
        await client.connect()
        await client.send_new_order(NewOrder("cli1", "AAPL", "buy", 1))
        assert (await reports.until(done("cli1")))[-1].last_px == 1892600
        status = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        assert status.startswith("market-maker ") and "orders" in status and "fills" in status
        await client.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
