"""Writes events into the projection tables; idempotent and indifferent to arrival order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.db import dialect_name
from send_shared.events.schemas import OrganisationV1, ReferralEventV1, ServiceV1
from waitlists.adapters.orm import organisations, referral_changes, referrals, services
from waitlists.domain.timeline import business_date


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


async def record_referral_change(session: AsyncSession, data: ReferralEventV1) -> None:
    insert = _insert(session)
    await session.execute(
        insert(referral_changes)
        .values(
            referral_id=data.referral_id,
            version=data.version,
            status=data.status.value,
            occurred_at=data.occurred_at,
            occurred_on=business_date(data.occurred_at),
            reason_code=data.reason_code,
            outcome_code=data.outcome_code,
        )
        .on_conflict_do_nothing()
    )
    facts = {
        "child_ref": data.child_ref,
        "service_id": data.service_id,
        "receiving_org_id": data.receiving_org_id,
        "referrer_org_id": data.referrer_org_id,
        "urgency": data.urgency or "routine",
        "latest_version": data.version,
        "latest_status": data.status.value,
    }
    await session.execute(insert(referrals).values(referral_id=data.referral_id, **facts).on_conflict_do_nothing())
    await session.execute(
        update(referrals)
        .where(referrals.c.referral_id == data.referral_id, referrals.c.latest_version < data.version)
        .values(latest_version=data.version, latest_status=data.status.value)
    )


async def record_service(session: AsyncSession, data: ServiceV1) -> None:
    values = {
        "organisation_id": data.organisation_id,
        "name": data.name,
        "clocks": data.clocks,
        "target_days": data.target_days,
        "active": data.active,
        "version": data.version,
    }
    await _upsert_newer(session, services, services.c.service_id, data.service_id, values)


async def record_organisation(session: AsyncSession, data: OrganisationV1) -> None:
    values = {"name": data.name, "kind": data.kind, "area_id": data.area_id, "version": data.version}
    await _upsert_newer(session, organisations, organisations.c.organisation_id, data.organisation_id, values)


async def _upsert_newer(session: AsyncSession, table: Any, key: Any, key_value: str, values: dict[str, Any]) -> None:
    """Insert, or replace only with a newer version: a late, older snapshot never wins."""
    insert = _insert(session)
    stmt = insert(table).values({key.name: key_value, **values})
    stmt = stmt.on_conflict_do_update(index_elements=[key], set_=values, where=table.c.version < stmt.excluded.version)
    await session.execute(stmt)
