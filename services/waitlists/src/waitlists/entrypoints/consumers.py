"""Consumer of referrals.events.v1: folds referral and directory events into the projection.

The facts of the children and services an event touched are re-derived once per transaction,
just before it commits (``facts.refresh_marked``), so a batch of events for one child costs one
refresh and the facts never disagree with the timelines they come from."""

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
from waitlists.adapters import facts, projection


async def on_referral_event(event: CloudEvent, session: AsyncSession) -> None:
    if event.type in REFERRAL_EVENT_TYPES:
        change = ReferralEventV1.model_validate(event.data)
        await projection.record_referral_change(session, change)
        facts.mark_child(session, change.child_ref)
    elif event.type == SERVICE_UPSERTED:
        service = ServiceV1.model_validate(event.data)
        if await projection.record_service(session, service):
            facts.mark_service(session, service.service_id)
    elif event.type == ORGANISATION_UPSERTED:
        await projection.record_organisation(session, OrganisationV1.model_validate(event.data))
