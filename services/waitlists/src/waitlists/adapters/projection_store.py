"""The projection replaced as a whole by a rebuild's (``service_layer.rebuild``).

On PostgreSQL the new tables are built beside the live ones, in a schema of their own, indexed and analysed,
then swapped in by renames in one short transaction, so readers wait only for the swap, never for the build.
Several processes may write parts of them, each on its own connection (``service_layer.rebuild_parts``).
On SQLite the load is one transaction, and readers (WAL) keep reading the old tables until it commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateTable

from send_shared.db import bulk_insert, create_engine
from waitlists.adapters.facts import insert as insert_facts
from waitlists.adapters.orm import FACT_TABLES, organisations, referral_changes, referrals, services
from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.projection import HeldProjection

log = logging.getLogger(__name__)
PROJECTION = (referral_changes, referrals, services, organisations, *FACT_TABLES)
_CHUNK = 5_000  # referrals per round of COPY
LOCK_WAIT = timedelta(seconds=30)
BUILD_SCHEMA = "waitlists_rebuild"
RETIRED_SCHEMA = "waitlists_retired"


class SqlProjectionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def writes_in_parts(self) -> bool:
        """Whether several processes may write parts of one rebuild (PostgreSQL: each on its own connection,
        into the tables built beside the live ones)."""
        return self._engine.dialect.name == "postgresql"

    def in_this_process(self) -> SqlProjectionStore:
        """The same database on connections of its own, for a process forked from this one: the connections
        of the engine it inherited belong to the parent, which goes on using them."""
        return SqlProjectionStore(create_engine(self._engine.url.render_as_string(hide_password=False), pool_size=1))

    async def close(self) -> None:
        await self._engine.dispose()

    async def referrals_held(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(referrals))).scalar_one())

    async def replace(self, held: HeldProjection) -> None:
        if not self.writes_in_parts:
            await _load_in_place(self._engine, held)
            return
        await self.begin_parts()
        try:
            await self.write_part(held)
            await self.finish_parts(held.services, held.organisations)
        except BaseException:
            await self.abandon_parts()
            raise

    async def begin_parts(self) -> None:
        """Empty tables built beside the live ones, without their indexes (cheaper built once the rows are in)."""
        async with self._engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE"))
            await conn.execute(text(f"CREATE SCHEMA {BUILD_SCHEMA}"))
            side = await conn.execution_options(schema_translate_map={None: BUILD_SCHEMA})
            for table in PROJECTION:
                await side.execute(CreateTable(table, include_foreign_key_constraints=[]))

    async def write_part(self, held: HeldProjection) -> None:
        """``held``'s referrals, their changes and their facts, into the tables beside the live ones."""
        async with self._engine.begin() as conn:
            side = await conn.execution_options(schema_translate_map={None: BUILD_SCHEMA})
            await _fill_referrals(side, held)

    async def finish_parts(
        self,
        services_held: Mapping[str, ServiceEntry],
        organisations_held: Mapping[str, OrganisationEntry],
        *,
        connections: int = 1,
    ) -> None:
        """The directory added, the indexes built and the tables vacuumed (a table at a time on each of
        ``connections``), and the tables beside swapped in for the live ones."""
        async with self._engine.begin() as conn:
            side = await conn.execution_options(schema_translate_map={None: BUILD_SCHEMA})
            await _fill_directory(side, services_held, organisations_held)
        tables = list(PROJECTION)

        async def index_and_vacuum() -> None:
            async with self._engine.connect() as conn:
                # VACUUM also marks the pages all-visible, so the covering indexes answer without the tables.
                side = await conn.execution_options(isolation_level="AUTOCOMMIT",
                                                    schema_translate_map={None: BUILD_SCHEMA})  # fmt: skip
                await side.execute(text("SET maintenance_work_mem = '256MB'"))
                while tables:
                    table = tables.pop(0)
                    for index in table.indexes:
                        await side.run_sync(index.create)
                    await side.execute(text(f"VACUUM ANALYZE {BUILD_SCHEMA}.{table.name}"))
                await side.execute(text("RESET maintenance_work_mem"))

        async with asyncio.TaskGroup() as group:  # one failing stops the others before the tables are dropped
            for _ in range(max(1, min(connections, len(tables)))):
                group.create_task(index_and_vacuum())
        await _swap_in(self._engine)

    async def abandon_parts(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE"))


async def _load_in_place(engine: AsyncEngine, held: HeldProjection) -> None:
    indexes = [index for table in PROJECTION for index in table.indexes]
    async with engine.begin() as conn:
        for table in PROJECTION:
            await conn.execute(delete(table))
        for index in indexes:
            await conn.run_sync(index.drop, checkfirst=True)
        await _fill_directory(conn, held.services, held.organisations)
        await _fill_referrals(conn, held)
        for index in indexes:
            await conn.run_sync(index.create)
        for table in PROJECTION:
            await conn.execute(text(f"ANALYZE {table.name}"))


async def _swap_in(engine: AsyncEngine) -> None:
    started = time.perf_counter()
    async with engine.begin() as conn:
        live_schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT.seconds}s'"))
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {RETIRED_SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {RETIRED_SCHEMA}"))
        for table in PROJECTION:
            await conn.execute(text(f'ALTER TABLE "{live_schema}".{table.name} SET SCHEMA {RETIRED_SCHEMA}'))
            await conn.execute(text(f'ALTER TABLE {BUILD_SCHEMA}.{table.name} SET SCHEMA "{live_schema}"'))
        await conn.execute(text(f"DROP SCHEMA {RETIRED_SCHEMA} CASCADE"))
        await conn.execute(text(f"DROP SCHEMA {BUILD_SCHEMA}"))
    log.info("rebuilt projection swapped in", extra={"swap_seconds": round(time.perf_counter() - started, 3)})


async def _fill_directory(
    conn: AsyncConnection,
    services_held: Mapping[str, ServiceEntry],
    organisations_held: Mapping[str, OrganisationEntry],
) -> None:
    orgs = [(o.organisation_id, o.name, o.kind, o.area_id, o.version) for o in organisations_held.values()]
    await bulk_insert(conn, organisations, orgs)
    if services_held:  # executemany, not COPY: the clocks are JSON, which the driver encodes
        await conn.execute(insert(services), [
            {"service_id": s.service_id, "organisation_id": s.organisation_id, "name": s.name, "clocks": list(s.clocks),
             "target_days": s.target_days, "active": s.active, "version": s.version} for s in services_held.values()
        ])  # fmt: skip


async def _fill_referrals(conn: AsyncConnection, held: HeldProjection) -> None:
    for chunk in held.chunks(_CHUNK):
        latest = [(r.referral_id, r.child_ref, r.service_id, r.receiving_org_id, r.referrer_org_id, r.urgency,
                   r.latest.version, r.latest.status.value, r.primary_need, r.secondary_need)
                  for r in chunk]  # fmt: skip
        await bulk_insert(conn, referrals, latest)
        await bulk_insert(conn, referral_changes, [
            (r.referral_id, c.version, c.status.value, c.occurred_at, c.on, c.reason_code, c.outcome_code)
            for r in chunk for c in r.changes
        ])  # fmt: skip
        await insert_facts(conn, held.facts(chunk))
