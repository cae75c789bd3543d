"""Rebuild: replay the referral topic from the beginning into emptied projection tables.

Run it with the service's consumer stopped (``RUN_WORKERS=false`` or the service down).
The projection, and the inbox rows of this consumer group, are emptied and refilled from
the topic in batches, one transaction per batch, through the same handler the live
consumer uses, so the result is the same tables the live consumer would have built.
Alerts already raised (``alerts_sent``) and the outbox are kept: a rebuild never raises an
alert twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from send_shared.events.envelope import EventDecodeError, decode_kafka
from send_shared.inbox import Inbox
from send_shared.kafka import fetch_to_end
from waitlists.adapters.orm import inbox, organisations, referral_changes, referrals, services
from waitlists.entrypoints.consumers import on_referral_event

log = logging.getLogger(__name__)
PROJECTION = (referral_changes, referrals, services, organisations)


@dataclass(frozen=True)
class RebuildReport:
    events: int
    skipped: int
    seconds: float


async def rebuild(
    engine: AsyncEngine, *, bootstrap_servers: str, topic: str, group_id: str, batch: int = 2000
) -> RebuildReport:
    started = time.perf_counter()
    async with engine.begin() as conn:
        for table in PROJECTION:
            await conn.execute(delete(table))
        await conn.execute(delete(inbox).where(inbox.c.consumer_group == group_id))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_poll_records=batch, fetch_max_bytes=64 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    events = skipped = 0
    sessions = session_factory(engine)
    claims = Inbox(inbox, group_id)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async for fetched in fetch_to_end(consumer, partitions, max_records=batch):
            async with sessions() as session, session.begin():
                for records in fetched.values():
                    for record in records:
                        try:
                            event = decode_kafka(record.headers or (), record.value)
                        except EventDecodeError:
                            skipped += 1
                            continue
                        if not await claims.claim(session, event.id, event.type):
                            continue
                        try:
                            await on_referral_event(event, session)
                        except ValidationError:
                            skipped += 1
                            continue
                        events += 1
    finally:
        await consumer.stop()
    report = RebuildReport(events, skipped, time.perf_counter() - started)
    log.info("projection rebuilt", extra={"events": events, "skipped": skipped, "seconds": round(report.seconds, 2)})
    return report
