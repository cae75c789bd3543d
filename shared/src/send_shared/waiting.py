"""The one way a worker waits between looks: until it is woken, told to stop, or the time is up."""

from __future__ import annotations

import asyncio


async def woken_or_stopped(wake: asyncio.Event, stop: asyncio.Event, at_most: float | None) -> None:
    """Returns when ``wake`` or ``stop`` is set, or after ``at_most`` seconds (never, when None). The waiters
    are cancelled, not awaited: awaiting them here could swallow a cancellation meant for the caller."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
