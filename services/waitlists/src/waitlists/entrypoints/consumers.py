"""Consumer of referrals.events.v1: keeps the per-referral state projection."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.db import dialect_name
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import REFERRAL_EVENT_TYPES, ReferralEventV1, ReferralStatus
from waitlists.adapters.orm import referral_states
from waitlists.domain.projection import supersedes

log = logging.getLogger(__name__)


async def on_referral_event(event: CloudEvent, session: AsyncSession) -> None:
    if event.type not in REFERRAL_EVENT_TYPES:
        return
    data = ReferralEventV1.model_validate(event.data)
    stored = (
        await session.execute(
            select(referral_states.c.version).where(referral_states.c.referral_id == data.referral_id)
        )
    ).scalar_one_or_none()
    if not supersedes(data.version, stored):
        return
    values = {
        "version": data.version,
        "status": data.status.value,
        "child_ref": data.child_ref,
        "service_id": data.service_id,
        "receiving_org_id": data.receiving_org_id,
        "status_since": data.occurred_at,
    }
    if stored is None:
        dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
        submitted_at = data.occurred_at if data.status is ReferralStatus.SUBMITTED else None
        await session.execute(
            dialect.insert(referral_states)
            .values(referral_id=data.referral_id, submitted_at=submitted_at, **values)
            .on_conflict_do_nothing()
        )
    else:
        await session.execute(
            update(referral_states)
            .where(referral_states.c.referral_id == data.referral_id, referral_states.c.version < data.version)
            .values(**values)
        )
