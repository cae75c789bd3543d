"""Rebuild: the projection made again from every event the referrals service ever published.

The source is the producer's event store, never a topic that may have forgotten: the rebuild asks
referrals for a store replay (``send_shared.store_replay``) and reads the reply to its end markers,
which say how many events each partition must hold; a reply short of one event is refused. The
events are folded in memory first (``replay.ReplayFold``: the live consumer's rules, without a query
per event). A rebuild that would hold fewer referrals than the projection it replaces refuses too,
unless told it may (the projection may hold referrals the store does not, only if something is wrong).

Run it with the service's consumer stopped (``RUN_WORKERS=false``, or the workers scaled to 0): the
command refuses while the consumer group has members. The API may keep serving: on PostgreSQL the new
tables are built beside the live ones, in a schema of their own, indexed and analysed, then swapped in
by renames in one short transaction, so readers wait only for the swap, never for the build. On SQLite
the load is one transaction, and readers (WAL) keep reading the old tables until it commits.
The consumer group's inbox and positions are left as they are: every write of this projection is
idempotent, so an event the consumer meets again after a rebuild changes nothing.
Alerts already raised (``alerts_sent``) and the outbox are kept: a rebuild never raises an alert twice.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.schema import CreateTable

from send_shared.db import bulk_insert
from send_shared.store_replay import read_replay
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
BUILD_SCHEMA = "waitlists_rebuild"
RETIRED_SCHEMA = "waitlists_retired"


class RebuildRefused(Exception):
    """The rebuild would lose what the projection holds; nothing was changed."""


@dataclass(frozen=True)
class RebuildReport:
    events: int
    skipped: int
    referrals: int
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


async def rebuild(
    engine: AsyncEngine,
    *,
    bootstrap_servers: str,
    reply_topic: str,
    request_id: str | None = None,
    allow_fewer: bool = False,
    idle_timeout: float = 60.0,
) -> RebuildReport:
    """Folds the store replay on ``reply_topic`` and puts the result in place of the projection."""
    started = time.perf_counter()
    fold = ReplayFold()
    with _no_cycle_collection():
        await read_replay(bootstrap_servers, reply_topic, fold.add, request_id=request_id, idle_timeout=idle_timeout)
        events, skipped, folded = fold.events, fold.skipped, fold.result()
        del fold
        held = await _referrals_held(engine)
        if len(folded.referrals) < held and not allow_fewer:
            raise RebuildRefused(
                f"the store replay holds {len(folded.referrals)} referrals and the projection {held}: "
                "rebuilding would lose referrals (allow it only if the projection is known to be wrong)"
            )
        count = len(folded.referrals)
        if engine.dialect.name == "postgresql":
            await _build_beside_and_swap(engine, folded)
        else:
            await _load_in_place(engine, folded)
        del folded  # gigabytes at national size: not held through VACUUM
    report = RebuildReport(events, skipped, count, time.perf_counter() - started)
    log.info("projection rebuilt", extra={"events": events, "skipped": skipped, "referrals": count,
                                          "seconds": round(report.seconds, 2)})  # fmt: skip
    return report


async def _referrals_held(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(referrals))).scalar_one())


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


async def _load_in_place(engine: AsyncEngine, folded: FoldedTopic) -> None:
    indexes = [index for table in PROJECTION for index in table.indexes]
    async with engine.begin() as conn:
        for table in PROJECTION:
            await conn.execute(delete(table))
        for index in indexes:
            await conn.run_sync(index.drop, checkfirst=True)
        await _fill(conn, folded)
        for index in indexes:
            await conn.run_sync(index.create)
        for table in PROJECTION:
            await conn.execute(text(f"ANALYZE {table.name}"))


async def _build_beside_and_swap(engine: AsyncEngine, folded: FoldedTopic) -> None:
    async with engine.begin() as conn:
        live_schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {BUILD_SCHEMA}"))
        await conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        side = await conn.execution_options(schema_translate_map={None: BUILD_SCHEMA})
        for table in PROJECTION:  # without indexes: cheaper to build them once the rows are in
            await side.execute(CreateTable(table, include_foreign_key_constraints=[]))
        await _fill(side, folded)
        for table in PROJECTION:
            for index in table.indexes:
                await side.run_sync(index.create)
    async with engine.connect() as conn:
        # VACUUM also marks the pages all-visible, so the covering indexes answer without the tables.
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in PROJECTION:
            await autocommit.execute(text(f"VACUUM ANALYZE {BUILD_SCHEMA}.{table.name}"))
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT.seconds}s'"))
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {RETIRED_SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {RETIRED_SCHEMA}"))
        for table in PROJECTION:
            await conn.execute(text(f'ALTER TABLE "{live_schema}".{table.name} SET SCHEMA {RETIRED_SCHEMA}'))
            await conn.execute(text(f'ALTER TABLE {BUILD_SCHEMA}.{table.name} SET SCHEMA "{live_schema}"'))
        await conn.execute(text(f"DROP SCHEMA {RETIRED_SCHEMA} CASCADE"))
        await conn.execute(text(f"DROP SCHEMA {BUILD_SCHEMA}"))
    log.info("rebuilt projection swapped in", extra={"swap_seconds": round(time.perf_counter() - started, 3)})


async def _fill(conn: AsyncConnection, folded: FoldedTopic) -> None:
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
