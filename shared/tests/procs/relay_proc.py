"""Runs an OutboxRelay until SIGTERM (or SIGKILL).

    python relay_proc.py DATABASE_URL BOOTSTRAP_SERVERS [LOG_FILE [ACK_DELAY_SECONDS]]

ACK_DELAY_SECONDS holds each broker acknowledgement back a moment before the relay sees it (a slow
broker), which widens the window between publishing a batch and marking it sent: a SIGKILL there
makes the next relay publish the batch again.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from _common import log_to, stop_on_sigterm
from aiokafka import AIOKafkaProducer
from shared_testkit import outbox

from send_shared.db import create_engine
from send_shared.kafka import new_producer
from send_shared.outbox import OutboxRelay


class SlowAcks:
    """The real producer, with every acknowledgement delivered ``delay`` seconds late."""

    def __init__(self, producer: AIOKafkaProducer, delay: float) -> None:
        self.producer = producer
        self.delay = delay

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        acked = await self.producer.send(topic, **kwargs)

        async def late() -> Any:
            metadata = await acked
            await asyncio.sleep(self.delay)
            return metadata

        return asyncio.ensure_future(late())


async def main(database_url: str, bootstrap: str, log_file: str | None, ack_delay: float) -> None:
    log_to(log_file, "send_shared.outbox")
    stop = stop_on_sigterm()
    engine = create_engine(database_url)
    producer = new_producer(bootstrap, client_id="relay-proc")
    await producer.start()
    try:
        print("ready", flush=True)
        publisher: Any = SlowAcks(producer, ack_delay) if ack_delay else producer
        await OutboxRelay(engine, outbox, publisher, batch_size=100, poll_interval=0.1).run(stop)
    finally:
        await producer.stop()
        await engine.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2] if len(args) > 2 else None, float(args[3]) if len(args) > 3 else 0.0))
