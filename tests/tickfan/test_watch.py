"""`tickfan watch --json` against a real fan-out server, and its failure to connect."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import eventually, free_port
from tests.fanout.conftest import bump
from tests.fanout.conftest import serve as run
from tickfan import watch


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    watch.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_json_lines_snapshot_then_updates_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    out: list[str] = []
    err: list[str] = []

    def printed(kind: str) -> bool:
        got = capsys.readouterr()
        out.append(got.out)
        err.append(got.err)
        return f'"type":"{kind}"' in "".join(out)

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch._watch(parse("aapl", "NOPE", "--json", "--url", url), stop))
        await eventually(lambda: printed("snapshot"), what="the snapshot line")
        bump(books, 1, 1000500)
        await eventually(lambda: printed("quotes"), what="an update line")
        stop.set()
        assert await task == 0

    run(scenario)
    lines = [json.loads(line) for line in "".join(out).splitlines()]
    assert lines[0] == {"error": "unknown_symbol", "message": "unknown symbol(s): NOPE"}
    snap, update = lines[1], lines[-1]
    assert snap["type"] == "snapshot" and snap["symbol"] == "AAPL" and snap["bid"] == "100.0000"
    assert snap["ask"] == "100.0100" and snap["bid_size"] == 100 and snap["last"] == "-"
    assert update["type"] == "quotes" and update["bid"] == "100.0500" and update["seq"] > snap["seq"]
    assert "unknown_symbol" in "".join(err)


def test_cannot_connect_exits_non_zero_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # closed again before the client tries it: nothing listens there
    code = watch.main(parse("AAPL", "--json", "--url", f"ws://127.0.0.1:{port}/v1/stream"))
    assert code == 1
    assert "cannot connect" in capsys.readouterr().err


def test_ctrl_c_exits_cleanly() -> None:
    import signal
    import sys

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tickfan", "watch", "TSLA", "--json", "--url", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
            assert first["type"] == "snapshot" and first["symbol"] == "TSLA"
            proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0 and b"Traceback" not in err, err
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run(scenario)
