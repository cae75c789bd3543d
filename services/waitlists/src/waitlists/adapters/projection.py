"""Writes events into the projection tables; idempotent and indifferent to arrival order."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.db import upsert_insert
from send_shared.events.schemas import OrganisationV1, ReferralEventV1, ServiceV1
from waitlists.adapters.orm import organisations, referral_changes, referrals, services
from waitlists.domain.timeline import DateOutOfRange, business_date

Fitting = TypeVar("Fitting", ReferralEventV1, OrganisationV1, ServiceV1)
_INT4 = range(-(2**31), 2**31)
_TABLES = (referrals, referral_changes, services, organisations)


class Unprojectable(ValueError):
    """An event the projection cannot hold, whatever the retries: a value longer than its column, a number
    out of its range (PostgreSQL refuses the row; SQLite would keep it), or a business time outside the
    dates the projection counts with. The live consumer parks it at once; a rebuild skips it."""


def _column_limits(schema: type[Any]) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Which of the schema's fields land in a column of bounded length, and which in an integer column."""
    columns = {c.name: c.type for table in _TABLES for c in table.columns}
    fields = [name for name in schema.model_fields if name in columns]
    lengths = tuple((name, t.length) for name in fields if isinstance(t := columns[name], String) and t.length)
    return lengths, tuple(name for name in fields if isinstance(columns[name], Integer))


_LIMITS = {schema: _column_limits(schema) for schema in (ReferralEventV1, ServiceV1, OrganisationV1)}


def projectable(entry: Fitting) -> Fitting:
    """``entry`` if the projection can hold it; raises ``Unprojectable`` naming the field otherwise."""
    lengths, integers = _LIMITS[type(entry)]
    for name, length in lengths:
        value = getattr(entry, name)
        if value is not None and len(value) > length:
            raise Unprojectable(f"{name}: longer than {length} characters")
    for name in integers:
        value = getattr(entry, name)
        if value is not None and value not in _INT4:
            raise Unprojectable(f"{name}: out of the integer range")
    if isinstance(entry, ReferralEventV1):
        try:
            business_date(entry.occurred_at)
        except DateOutOfRange as exc:
            raise Unprojectable(f"occurred_at: {exc}") from exc
    return entry


async def latest_version(session: AsyncSession, referral_id: str) -> int:
    """The newest version of the referral held (0 when none)."""
    found = await session.execute(select(referrals.c.latest_version).where(referrals.c.referral_id == referral_id))
    return int(found.scalar() or 0)


async def record_referral_change(session: AsyncSession, data: ReferralEventV1) -> None:
    await record_referral_changes(session, [data])


async def record_referral_changes(session: AsyncSession, batch: list[ReferralEventV1]) -> None:
    """Folds many referral events at once (the rebuild's path; the live consumer passes one)."""
    if not batch:
        return
    insert = upsert_insert(session)
    await session.execute(
        insert(referral_changes).on_conflict_do_nothing(),
        [
            {
                "referral_id": d.referral_id,
                "version": d.version,
                "status": d.status.value,
                "occurred_at": d.occurred_at,
                "occurred_on": business_date(d.occurred_at),
                "reason_code": d.reason_code,
                "outcome_code": d.outcome_code,
            }
            for d in batch
        ],
    )
    latest: dict[str, ReferralEventV1] = {}
    for d in batch:
        if d.referral_id not in latest or d.version > latest[d.referral_id].version:
            latest[d.referral_id] = d
    stmt = insert(referrals)
    stmt = stmt.on_conflict_do_update(
        index_elements=[referrals.c.referral_id],
        set_={"latest_version": stmt.excluded.latest_version, "latest_status": stmt.excluded.latest_status},
        where=referrals.c.latest_version < stmt.excluded.latest_version,
    )
    await session.execute(
        stmt,
        [
            {
                "referral_id": d.referral_id,
                "child_ref": d.child_ref,
                "service_id": d.service_id,
                "receiving_org_id": d.receiving_org_id,
                "referrer_org_id": d.referrer_org_id,
                "urgency": d.urgency or "routine",
                "latest_version": d.version,
                "latest_status": d.status.value,
            }
            for d in latest.values()
        ],
    )


async def record_service(session: AsyncSession, data: ServiceV1) -> bool:
    """Returns whether the service's clocks or target changed (so its referrals' facts must follow)."""
    known = (
        await session.execute(
            select(services.c.clocks, services.c.target_days, services.c.version).where(
                services.c.service_id == data.service_id
            )
        )
    ).first()
    values = {
        "organisation_id": data.organisation_id,
        "name": data.name,
        "clocks": data.clocks,
        "target_days": data.target_days,
        "active": data.active,
        "version": data.version,
    }
    await _upsert_newer(session, services, services.c.service_id, data.service_id, values)
    return known is None or (
        known.version < data.version and (known.clocks, known.target_days) != (data.clocks, data.target_days)
    )


async def record_organisation(session: AsyncSession, data: OrganisationV1) -> None:
    values = {"name": data.name, "kind": data.kind, "area_id": data.area_id, "version": data.version}
    await _upsert_newer(session, organisations, organisations.c.organisation_id, data.organisation_id, values)


async def _upsert_newer(session: AsyncSession, table: Any, key: Any, key_value: str, values: dict[str, Any]) -> None:
    """Insert, or replace only with a newer version: a late, older snapshot never wins."""
    insert = upsert_insert(session)
    stmt = insert(table).values({key.name: key_value, **values})
    stmt = stmt.on_conflict_do_update(index_elements=[key], set_=values, where=table.c.version < stmt.excluded.version)
    await session.execute(stmt)
