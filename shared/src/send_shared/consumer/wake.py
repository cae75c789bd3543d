"""Wakes a worker for work a consumer's handler queued, once the transaction holding it has committed."""

from __future__ import annotations

from collections.abc import Callable


class WakeAfterCommit:
    """The handler calls ``queued`` as it queues work; the consumer runtime calls ``committed`` (a
    ``ConsumerSpec``'s ``after_commit``) once the transaction is durable, and only then is ``wake`` called.
    Woken from inside the handler, the worker would look before the commit and miss the work. A transaction
    rolled back after ``queued`` costs one needless wake at the next commit, never a missed one."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._queued = False

    def queued(self) -> None:
        self._queued = True

    def committed(self) -> None:
        if self._queued:
            self._queued = False
            self._wake()
