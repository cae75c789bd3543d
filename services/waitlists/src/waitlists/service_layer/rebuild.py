"""Rebuild: replay the referral topic from the beginning into emptied projection tables.

Run it with the service's consumer stopped (``RUN_WORKERS=false`` or the service down).
The projection is emptied and refilled from the topic in batches, one transaction per
batch, with the live consumer's writes; then every referral's facts are derived, a range
of children at a time. The result is the same tables the live consumer would have built.
The consumer group's inbox is left as it is: every write of this projection is idempotent,
so an event the live consumer meets again after a rebuild changes nothing.
Alerts already raised (``alerts_sent``) and the outbox are kept: a rebuild never raises an
alert twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_kafka
from send_shared.events.schemas import REFERRAL_EVENT_TYPES, ReferralEventV1
from send_shared.kafka import fetch_to_end
from waitlists.adapters import facts, projection
from waitlists.adapters.orm import (
    FACT_TABLES,
    organisations,
    referral_changes,
    referral_outcomes,
    referrals,
    services,
)
from waitlists.entrypoints.consumers import on_referral_event

log = logging.getLogger(__name__)
PROJECTION = (referral_changes, referrals, services, organisations, *FACT_TABLES)


@dataclass(frozen=True)
class RebuildReport:
    events: int
    skipped: int
    seconds: float


async def _apply_batch(session: AsyncSession, batch: list[CloudEvent]) -> tuple[int, int]:
    """One transaction for a whole fetch: referral events in bulk, directory events one by one.
    Every write is idempotent, so a repeat of an event (at-least-once) changes nothing."""
    referral_events: list[ReferralEventV1] = []
    invalid = 0
    for event in batch:
        try:
            if event.type in REFERRAL_EVENT_TYPES:
                referral_events.append(ReferralEventV1.model_validate(event.data))
            else:
                await on_referral_event(event, session)
        except ValidationError:
            invalid += 1
    await projection.record_referral_changes(session, referral_events)
    return len(batch) - invalid, invalid


async def backfill_facts(sessions: async_sessionmaker[AsyncSession]) -> None:
    """At start-up: a projection kept from before the fact tables existed gets its facts once."""
    async with sessions() as session:
        has_referrals = (await session.execute(select(referrals.c.referral_id).limit(1))).first() is not None
        has_facts = (await session.execute(select(referral_outcomes.c.referral_id).limit(1))).first() is not None
    if has_referrals and not has_facts:
        log.info(
            "deriving facts for an existing projection", extra={"referrals": await facts.derive_everything(sessions)}
        )


async def _refresh_statistics(engine: AsyncEngine) -> None:
    """The planner knew the tables empty; on PostgreSQL, VACUUM also marks the pages all-visible, which
    lets the covering indexes answer figure reads without touching the tables."""
    command = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in PROJECTION:
            await autocommit.execute(text(f"{command} {table.name}"))


async def rebuild(engine: AsyncEngine, *, bootstrap_servers: str, topic: str, batch: int = 2000) -> RebuildReport:
    started = time.perf_counter()
    async with engine.begin() as conn:
        for table in PROJECTION:
            await conn.execute(delete(table))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_poll_records=batch, fetch_max_bytes=64 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    events = skipped = 0
    sessions = session_factory(engine)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async for fetched in fetch_to_end(consumer, partitions, max_records=batch):
            decoded = []
            for records in fetched.values():
                for record in records:
                    try:
                        decoded.append(decode_kafka(record.headers or (), record.value))
                    except EventDecodeError:
                        skipped += 1
            async with sessions() as session, session.begin():
                applied, invalid = await _apply_batch(session, decoded)
            events += applied
            skipped += invalid
    finally:
        await consumer.stop()
    await facts.derive_everything(sessions)
    await _refresh_statistics(engine)
    report = RebuildReport(events, skipped, time.perf_counter() - started)
    log.info("projection rebuilt", extra={"events": events, "skipped": skipped, "seconds": round(report.seconds, 2)})
    return report
