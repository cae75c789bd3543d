"""Runs a ConsumerRuntime applying the test effect until SIGTERM (or SIGKILL).

    python consumer_proc.py DATABASE_URL BOOTSTRAP_SERVERS TOPIC GROUP [LOG_FILE]

The log file gets one line per event processed or skipped as a duplicate.
"""

from __future__ import annotations

import asyncio
import sys

from _common import log_to, stop_on_sigterm
from shared_testkit import apply_effect, inbox, positions, quick_rejoin_consumer

import send_shared.consumer.runtime as runtime_module
from send_shared.consumer import ConsumerRuntime
from send_shared.consumer.positions import ConsumerPositions
from send_shared.db import create_engine
from send_shared.inbox import Inbox
from send_shared.kafka import new_producer


async def main(database_url: str, bootstrap: str, topic: str, group: str, log_file: str | None) -> None:
    log_to(log_file, "send_shared.consumer")
    runtime_module.new_consumer = quick_rejoin_consumer  # a killed member leaves the group within ~1.5 s
    stop = stop_on_sigterm()
    engine = create_engine(database_url)
    producer = new_producer(bootstrap, client_id="consumer-proc-dlq")
    await producer.start()
    try:
        runtime = ConsumerRuntime(
            bootstrap_servers=bootstrap,
            group_id=group,
            topics=[topic],
            handler=apply_effect,
            engine=engine,
            inbox=Inbox(inbox, group),
            positions=ConsumerPositions(positions, group),
            producer=producer,
            max_attempts=5,
            backoff_initial=0.05,
            backoff_max=0.5,
        )
        print("ready", flush=True)
        await runtime.run(stop)
    finally:
        await producer.stop()
        await engine.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], args[3], args[4] if len(args) > 4 else None))
