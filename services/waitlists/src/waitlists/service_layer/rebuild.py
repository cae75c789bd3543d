"""Rebuild: replay the referral topic from the beginning into the projection tables.

Run it with the service's consumer stopped (``RUN_WORKERS=false`` or the service down).
The whole topic is read and folded in memory first (``replay.ReplayFold``: the live consumer's
rules, without a query per event); then one transaction empties the projection tables, writes
every row with ``COPY`` in referral id order, derives every referral's facts from the folded
timelines, and builds the secondary indexes after the load (cheaper than keeping them up
row by row). Readers never see a half-built projection: on PostgreSQL they wait for the load
(it holds the tables' locks; a minute or two at national size), then see all of the new one.
The rebuild waits at most ``LOCK_WAIT`` for readers already in the tables, then gives up.
The consumer group's inbox is left as it is: every write of this projection is idempotent,
so an event the live consumer meets again after a rebuild changes nothing.
Alerts already raised (``alerts_sent``) and the outbox are kept: a rebuild never raises an
alert twice.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from send_shared.db import bulk_insert
from send_shared.kafka import fetch_to_end
from waitlists.adapters import facts
from waitlists.adapters.orm import (
    FACT_TABLES,
    organisations,
    referral_changes,
    referral_outcomes,
    referrals,
    services,
)
from waitlists.service_layer.replay import FoldedTopic, ReplayFold

log = logging.getLogger(__name__)
PROJECTION = (referral_changes, referrals, services, organisations, *FACT_TABLES)
_CHUNK = 5_000  # referrals per round of COPY
LOCK_WAIT = timedelta(seconds=30)


@dataclass(frozen=True)
class RebuildReport:
    events: int
    skipped: int
    seconds: float


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


async def rebuild(engine: AsyncEngine, *, bootstrap_servers: str, topic: str, batch: int = 5000) -> RebuildReport:
    started = time.perf_counter()
    fold = ReplayFold()
    with _no_cycle_collection():
        await _read(fold, bootstrap_servers, topic, batch)
        events, skipped, folded = fold.events, fold.skipped, fold.result()
        del fold
        async with engine.begin() as conn:
            await _load(conn, folded)
        del folded  # gigabytes at national size: not held through VACUUM
    await _refresh_statistics(engine)
    report = RebuildReport(events, skipped, time.perf_counter() - started)
    log.info("projection rebuilt", extra={"events": events, "skipped": skipped, "seconds": round(report.seconds, 2)})
    return report


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The fold holds millions of tuples, and every collection of the oldest generation walks them
    all (it took a fifth of the rebuild). The fold makes no reference cycles; the little cyclic
    garbage of the client libraries meanwhile waits for the first collection after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _read(fold: ReplayFold, bootstrap_servers: str, topic: str, batch: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_poll_records=batch, fetch_max_bytes=64 * 1024 * 1024, fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async for fetched in fetch_to_end(consumer, partitions, max_records=batch, idle_ms=50):
            for records in fetched.values():
                for record in records:
                    fold.add(record.headers or (), record.value)
    finally:
        await consumer.stop()


async def _load(conn: AsyncConnection, folded: FoldedTopic) -> None:
    indexes = [index for table in PROJECTION for index in table.indexes]
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT.seconds}s'"))
        await conn.execute(text(f"TRUNCATE {', '.join(table.name for table in PROJECTION)}"))
        await conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    else:
        for table in PROJECTION:
            await conn.execute(delete(table))
    for index in indexes:
        await conn.run_sync(index.drop, checkfirst=True)
    orgs = [(oid, o.name, o.kind, o.area_id, o.version) for oid, o in folded.organisations.items()]
    await bulk_insert(conn, organisations, orgs)
    if folded.services:  # executemany, not COPY: the clocks are JSON, which the driver encodes
        columns = {c.name for c in services.columns}
        await conn.execute(insert(services), [s.model_dump(include=columns) for s in folded.services.values()])
    for chunk in folded.chunks(_CHUNK):
        latest = [(rid, r.child_ref, r.service_id, r.receiving_org_id, r.referrer_org_id, r.urgency, *r.changes[-1][:2])
                  for rid, r in chunk]  # fmt: skip
        await bulk_insert(conn, referrals, latest)
        await bulk_insert(conn, referral_changes, [(rid, *change) for rid, r in chunk for change in r.changes])
        await facts.insert(conn, folded.facts(chunk))
    for index in indexes:
        await conn.run_sync(index.create)
