"""``supervised``: a worker's loop that dies on an unexpected error is logged and started again; one that ends
because the worker stops is not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from order_api.supervise import supervised

pytestmark = pytest.mark.anyio


async def test_a_crashed_loop_is_restarted_and_a_stopped_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    stop = asyncio.Event()
    counters: dict[str, int] = {}

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise AttributeError("'NoneType' object has no attribute 'writelines'")  # redis-py, mid-failover
        if len(runs) == 2:
            return  # returned while the worker runs: also restarted
        stop.set()

    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(supervised("consume tickfan:exec:2", loop, stop.is_set,
                                          logging.getLogger("t"), counters), 5)
    assert runs == [0, 1, 2] and counters == {"loop_restarts": 2}
    assert "consume tickfan:exec:2 ended on an unexpected error" in caplog.text
    assert "AttributeError" in caplog.text


async def test_cancelling_the_supervisor_cancels_the_loop() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervised("x", loop, lambda: False, logging.getLogger("t")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
