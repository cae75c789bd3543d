"""The shared wait between looks ends on a wake, a stop or its time, and never swallows a cancellation."""

from __future__ import annotations

import asyncio

from send_shared.waiting import woken_or_stopped


async def test_a_wake_a_stop_or_the_time_ends_the_wait() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    await woken_or_stopped(wake, stop, 0.01)
    wake.set()
    await asyncio.wait_for(woken_or_stopped(wake, stop, 60), 1)
    await asyncio.wait_for(woken_or_stopped(asyncio.Event(), _set(), 60), 1)


def _set() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


async def test_a_worker_looping_on_it_stops_when_cancelled_at_any_moment() -> None:
    """A loop of waits that end at once, cancelled after 1, 2, ... 40 turns of the event loop, so that the
    cancellation lands in every step of the wait: each time the task ends cancelled."""
    for turns in range(1, 41):
        wake, stop = asyncio.Event(), asyncio.Event()

        async def worker(wake: asyncio.Event = wake, stop: asyncio.Event = stop) -> None:
            while not stop.is_set():
                wake.set()
                await woken_or_stopped(wake, stop, 1)
                wake.clear()

        task = asyncio.create_task(worker())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done and task.cancelled(), f"the worker went on after a cancellation at turn {turns}"
