"""A rebuild from the topic gives exactly what the live consumer built."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import date
from functools import partial
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.consumer import ConsumerRuntime
from send_shared.consumer.positions import ConsumerPositions
from send_shared.db import session_factory
from send_shared.events.envelope import encode_kafka
from send_shared.inbox import Inbox
from send_shared.kafka import OutgoingRecord, ensure_topics, new_producer, publish_all
from send_shared.store_replay import IncompleteReplay, send_markers
from waitlists.adapters.orm import (
    FACT_TABLES,
    inbox,
    metadata,
    organisations,
    positions,
    referral_changes,
    referrals,
    services,
)
from waitlists.adapters.projection_store import SqlProjectionStore
from waitlists.adapters.unit_of_work import JoinedUnitOfWork, SqlUnitOfWork
from waitlists.bootstrap import handle_referral_event, refresh_facts
from waitlists.domain.scope import Scope
from waitlists.service_layer import rebuild_parts
from waitlists.service_layer.projection import backfill_facts, derive_everything
from waitlists.service_layer.rebuild import RebuildRefused, rebuild
from waitlists.service_layer.reporting import FigureRequest, figures_for

from .conftest import directory_events, referral_events


def history() -> list[Any]:
    events = directory_events()
    events += referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-12"),
                              ("in_progress", "2026-01-30"), needs=("SEMH", "ASD"))  # fmt: skip
    events += referral_events(
        "r2",
        "c2",
        "svc-camhs",
        ("submitted", "2026-01-05"),
        ("rejected", "2026-01-20", "outside_remit"),
        needs=("SLCN", None),
    )
    events += referral_events("r3", "c2", "svc-slt", ("submitted", "2026-01-21"), ("accepted", "2026-01-25"),
                              ("on_hold", "2026-02-01", "family_unavailable"), ("accepted", "2026-02-15"))  # fmt: skip
    events += referral_events("r4", "c3", "svc-ehc", ("submitted", "2026-01-10"), ("accepted", "2026-02-18"),
                              ("completed", "2026-05-01", None, "no_plan"))  # fmt: skip
    events += referral_events("r5", "c4", "svc-camhs", ("submitted", "2026-03-01"), ("entered_in_error", "2026-03-02"))
    return events


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    found: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table in (referral_changes, referrals, services, organisations, *FACT_TABLES):
            rows = (await conn.execute(select(table))).all()
            found[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    figures = await figures_for(
        FigureRequest(Scope.AREA, "la-test", date(2026, 6, 1), date(2026, 1, 1)), SqlUnitOfWork(session_factory(engine))
    )
    found["figures"] = repr(figures)
    return found


async def replay_of(
    bootstrap: str, producer: Any, events_and_records: list[OutgoingRecord], partitions: int = 4
) -> str:
    """What the referrals service's store replay writes: every record, then one end marker per partition."""
    reply = f"replay-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, {reply: partitions})
    records = [OutgoingRecord(reply, r.key, r.value, r.headers) for r in events_and_records]
    per_partition = Counter(ack.partition for ack in await publish_all(producer, records))
    await send_markers(producer, reply, "a" * 32, "referrals.events.v1", partitions, per_partition, source="/test")
    return reply


async def replay_of_events(bootstrap: str, events: list[Any]) -> str:
    """A store replay of ``events``, each keyed by its subject (the referral id)."""
    producer = new_producer(bootstrap, client_id="rebuild-test")
    await producer.start()
    try:
        records = [OutgoingRecord("x", (e.subject or "").encode(), *reversed(encode_kafka(e))) for e in events]
        return await replay_of(bootstrap, producer, records)
    finally:
        await producer.stop()


@pytest.mark.parametrize("processes", [1, 4])
async def test_rebuild_equals_the_live_projection(engine: AsyncEngine, kafka_bootstrap: str, processes: int) -> None:
    """With four processes on PostgreSQL each reads one partition: child c2's rejection (r2) and its acceptance
    elsewhere (r3), which closes the hand-off gap, are folded by different processes."""
    topic = f"rebuild-{uuid.uuid4().hex[:8]}"
    group = f"waitlists-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, {topic: 4, f"{group}.dlq.v1": 1, f"{group}.replay.v1": 1})
    producer = new_producer(kafka_bootstrap, client_id="rebuild-test")
    await producer.start()
    try:
        events = history()
        later_slt = [e for e in directory_events(version=2) if e.subject == "svc-slt"]
        later_slt[0].data["target_days"] = 70
        # A relay may publish an event twice; a late, older directory snapshot must not win.
        events += [events[-1], *later_slt, *(e for e in directory_events() if e.subject == "svc-slt")]
        records = []
        for event in events:
            headers, value = encode_kafka(event)
            records.append(OutgoingRecord(topic, (event.subject or "").encode(), value, headers))
        records.append(OutgoingRecord(topic, b"r1", b"{not json", records[-1].headers))  # parked by the consumer
        partition_of = {
            r.key: ack.partition for r, ack in zip(records, await publish_all(producer, records), strict=True)
        }
        assert partition_of[b"r2"] != partition_of[b"r3"]
        distinct = len({e.id for e in events})
        runtime = ConsumerRuntime(
            bootstrap_servers=kafka_bootstrap, group_id=group, topics=[topic], handler=handle_referral_event,
            before_commit=refresh_facts, engine=engine, inbox=Inbox(inbox, group),
            positions=ConsumerPositions(positions, group), producer=producer,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                if (await conn.execute(select(func.count()).select_from(inbox))).scalar_one() == distinct:
                    break
            await asyncio.sleep(0.2)
        stop.set()
        await task
        reply = await replay_of(kafka_bootstrap, producer, records)
    finally:
        await producer.stop()
    live = await snapshot(engine)
    assert len(live["referral_changes"]) == 14
    async with engine.connect() as conn:
        needs = {r.referral_id: (r.primary_need, r.secondary_need) for r in await conn.execute(select(referrals))}
    assert (needs["r1"], needs["r2"], needs["r3"]) == (("SEMH", "ASD"), ("SLCN", None), (None, None))
    steps: list[tuple[str, int]] = []
    report = await rebuild(
        SqlProjectionStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply,
        progress=lambda step, count: steps.append((step, count)), processes=processes,
    )  # fmt: skip
    assert (report.events, report.skipped, report.referrals) == (len(events), 1, 5)
    assert steps == [("read", report.events), ("writing", 5)], "a person waiting is told how far it got"
    assert ("svc-slt", "70") in {(row[0], row[4]) for row in live["services"]}
    assert await snapshot(engine) == live
    async with engine.connect() as conn:  # the swapped-in tables are the models' own: names, indexes, keys
        assert await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata)) == []
    assert not await build_schemas(engine), "nothing of the build is left behind"


async def project(engine: AsyncEngine) -> None:
    """The live consumer's effect of the history, without a broker."""
    sessions = session_factory(engine)
    for event in history():
        async with sessions() as session, session.begin():
            await handle_referral_event(event, session)
            await refresh_facts(session)


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_rebuild_from_a_replay_missing_an_event_is_refused(
    engine: AsyncEngine, kafka_bootstrap: str, processes: int
) -> None:
    """A partition holding one record fewer than its end marker says: nothing is built from it."""
    await project(engine)
    producer = new_producer(kafka_bootstrap, client_id="rebuild-test")
    await producer.start()
    try:
        records = []
        for event in history():
            headers, value = encode_kafka(event)
            records.append(OutgoingRecord("x", (event.subject or "").encode(), value, headers))
        reply = f"replay-{uuid.uuid4().hex[:8]}"
        await ensure_topics(kafka_bootstrap, {reply: 2})
        acks = await publish_all(producer, [OutgoingRecord(reply, r.key, r.value, r.headers) for r in records])
        claimed = Counter(ack.partition for ack in acks)
        claimed[0] += 1  # the producer sent one more than the partition holds
        await send_markers(producer, reply, "b" * 32, "referrals.events.v1", 2, claimed, source="/test")
    finally:
        await producer.stop()
    before = await snapshot(engine)
    with pytest.raises(IncompleteReplay, match=r"\[0\] held"):
        await rebuild(SqlProjectionStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply,
                      processes=processes)  # fmt: skip
    assert await snapshot(engine) == before
    assert not await build_schemas(engine), "the tables built beside were dropped"


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_rebuild_that_would_lose_referrals_is_refused(
    engine: AsyncEngine, kafka_bootstrap: str, processes: int
) -> None:
    await project(engine)
    before = await snapshot(engine)
    reply = await replay_of_events(kafka_bootstrap, [e for e in history() if e.subject != "r1"])  # r1 lost
    with pytest.raises(RebuildRefused, match="holds 4 referrals and the projection 5"):
        await rebuild(SqlProjectionStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply,
                      processes=processes)  # fmt: skip
    assert await snapshot(engine) == before
    assert not await build_schemas(engine)
    report = await rebuild(
        SqlProjectionStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply, allow_fewer=True,
        processes=processes,
    )  # fmt: skip
    assert report.referrals == 4


async def test_a_rebuild_part_that_dies_fails_the_rebuild_and_changes_nothing(
    engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    """On PostgreSQL; SQLite is rebuilt in this process whatever the processes asked for, so nothing dies there."""
    await project(engine)
    before = await snapshot(engine)
    reply = await replay_of_events(kafka_bootstrap, history())

    class DyingStore(SqlProjectionStore):  # the part's own store dies as it would write: killed, out of memory
        def in_this_process(self) -> SqlProjectionStore:
            os._exit(9)

    if engine.dialect.name != "postgresql":
        report = await rebuild(DyingStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply, processes=2)
        assert (report.referrals, await snapshot(engine)) == (5, before)
        return
    with pytest.raises(rebuild_parts.PartFailed, match="ended before it had written"):
        await rebuild(DyingStore(engine), bootstrap_servers=kafka_bootstrap, reply_topic=reply, processes=2)
    assert await snapshot(engine) == before
    assert not await build_schemas(engine)


async def build_schemas(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        schemas = await conn.run_sync(lambda c: inspect(c).get_schema_names())
    return {"waitlists_rebuild", "waitlists_retired"} & set(schemas)


async def test_a_projection_from_before_the_facts_gets_them_at_start_up(engine: AsyncEngine) -> None:
    """A database migrated from before the fact tables holds timelines but no facts: start-up derives them once,
    and the figures are then what the live consumer would have given."""
    sessions = session_factory(engine)
    for event in history():  # the old consumer: timelines only
        async with sessions() as session, session.begin():
            await handle_referral_event(event, session)
            await JoinedUnitOfWork(session).referrals.write_saved()
            session.info.clear()  # no facts refreshed
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(FACT_TABLES[0]))).scalar_one() == 0
    await backfill_facts(partial(SqlUnitOfWork, sessions))
    backfilled = await snapshot(engine)
    async with engine.begin() as conn:
        for table in FACT_TABLES:
            await conn.execute(table.delete())
    await derive_everything(partial(SqlUnitOfWork, sessions))
    assert await snapshot(engine) == backfilled
    figures = await figures_for(
        FigureRequest(Scope.AREA, "la-test", date(2026, 6, 1), date(2026, 1, 1)), SqlUnitOfWork(sessions)
    )
    assert figures.waiting.waiting == 1  # r3 at SLT; r1 started, r2 rejected, r4 completed, r5 in error
    assert figures.handoff_gaps.closed == 1  # c2: rejected at CAMHS on 20 Jan, accepted at SLT on 25 Jan
