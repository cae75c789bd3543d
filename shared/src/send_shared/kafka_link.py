"""The service's one Kafka producer, replaced with a fresh one whenever the broker's state was lost.

A producer that wrote to a topic while the broker did not know it (Tansu after a restart accepts
such writes) keeps failing after the topic is created again, and a new producer does not: so a
detected loss ends with ``reset``. Users ask for the current producer at each use (``get``) rather
than keeping one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from send_shared.kafka import new_producer

log = logging.getLogger(__name__)


class ProducerSource(Protocol):
    async def get(self) -> Any: ...

    def reset(self, reason: str) -> None: ...


class FixedProducer:
    """A producer that is never replaced (tests and one-off tools)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    async def get(self) -> Any:
        return self.producer

    def reset(self, reason: str) -> None:
        log.warning("producer reset asked of a fixed producer; ignored", extra={"reason": reason})


def as_source(producer: Any) -> ProducerSource:
    return producer if isinstance(producer, ProducerLink | FixedProducer) else FixedProducer(producer)


class ProducerLink:
    def __init__(
        self, bootstrap_servers: str, *, client_id: str, before_ready: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.before_ready = before_ready  # e.g. create the service's topics, so no send auto-creates one
        self.resets = 0
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._reset = asyncio.Event()

    @property
    def current(self) -> AIOKafkaProducer | None:
        return self._producer if self._ready.is_set() else None

    async def get(self) -> AIOKafkaProducer:
        await self._ready.wait()
        assert self._producer is not None
        return self._producer

    def reset(self, reason: str) -> None:
        if not self._reset.is_set():
            log.warning("kafka producer will be replaced", extra={"reason": reason})
        self._reset.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keeps a started producer available until ``stop``. A reset brings a new producer in before the
        old one goes, and the old one is stopped only after a grace period: stopping a producer under a
        send that waits for metadata would leave that send waiting for ever."""
        retiring: list[asyncio.Task[None]] = []
        try:
            while not stop.is_set():
                producer = new_producer(self.bootstrap_servers, client_id=self.client_id)
                await producer.start()
                try:
                    if self.before_ready is not None:
                        await self.before_ready()
                except BaseException:
                    await producer.stop()
                    raise
                self._reset.clear()
                previous, self._producer = self._producer, producer
                self._ready.set()
                if previous is not None:
                    self.resets += 1
                    retiring.append(asyncio.create_task(_stop_later(previous, RETIRE_AFTER_SECONDS)))
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._reset.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            self._ready.clear()
            current, self._producer = self._producer, None
            for task in retiring:
                task.cancel()
            await asyncio.gather(*retiring, return_exceptions=True)
            if current is not None:
                await current.stop()


RETIRE_AFTER_SECONDS = 20.0


async def _stop_later(producer: AIOKafkaProducer, delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:
        await producer.stop()
