"""Consumer of referrals.events.v1: folds referral and directory events into the projection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    REFERRAL_EVENT_TYPES,
    SERVICE_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ServiceV1,
)
from waitlists.adapters import projection


async def on_referral_event(event: CloudEvent, session: AsyncSession) -> None:
    if event.type in REFERRAL_EVENT_TYPES:
        await projection.record_referral_change(session, ReferralEventV1.model_validate(event.data))
    elif event.type == SERVICE_UPSERTED:
        await projection.record_service(session, ServiceV1.model_validate(event.data))
    elif event.type == ORGANISATION_UPSERTED:
        await projection.record_organisation(session, OrganisationV1.model_validate(event.data))
