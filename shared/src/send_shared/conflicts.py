"""Use cases run again when a concurrent transaction wrote the same key first.

Two requests that race (a client retrying with the same Idempotency-Key while its first try is still running, two
schools referring one child to one service at once) each read before either writes, and the second's write meets
the first's row on a unique key. Running the second again, in a new transaction, reads what the first committed
and answers as if the two had come one after the other: the stored response, or a 409. A unit of work raises
``WriteConflict`` for the unique violation; the use case is wrapped in ``retried_on_conflict``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

_ATTEMPTS = 3  # a third race in a row is left to the caller: a 409 that says to try again

P = ParamSpec("P")
T = TypeVar("T")


class WriteConflict(Exception):
    """A concurrent transaction committed a row with the same unique key first; nothing of this one was kept."""


def retried_on_conflict(use_case: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``use_case`` run again, from its start, after a ``WriteConflict``; the last attempt's conflict is raised.
    The use case must open its unit of work itself, so that each attempt is a transaction of its own."""

    @functools.wraps(use_case)
    async def attempted(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(_ATTEMPTS - 1):
            try:
                return await use_case(*args, **kwargs)
            except WriteConflict:
                continue
        return await use_case(*args, **kwargs)

    return attempted
