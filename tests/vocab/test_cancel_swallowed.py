"""``cancel_swallowed``: a loop around a call that eats a cancellation (as redis-py can while Redis restarts)
still ends when cancelled, instead of going round forever and hanging whoever waits for it."""

from __future__ import annotations

import asyncio

import pytest

from vocab.redisconn import cancel_swallowed

pytestmark = pytest.mark.anyio


async def swallowing_call() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass  # what the library does by mistake


async def test_a_loop_that_checks_ends_when_cancelled_inside_a_swallowing_call() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            await swallowing_call()
            if cancel_swallowed():
                raise asyncio.CancelledError
            await asyncio.sleep(0)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done and task.cancelled() and rounds == 1


async def test_nothing_is_swallowed_in_a_task_not_asked_to_stop() -> None:
    assert not cancel_swallowed()
