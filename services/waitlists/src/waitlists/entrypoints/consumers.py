"""Consumer of referrals.events.v1: folds referral and directory events into the projection.

Every event is checked against its schema and its own attributes first (``validated_payload``), then
against what the projection can hold (``projection.projectable``: column lengths, and business times
within the dates counted with, so an event dated in year 1 or 9999 never reaches the date arithmetic);
a violation raises an error the runtime never retries, and the consumer parks the event on the
dead-letter topic and goes on with the next. The facts of the children and services an event
touched are re-derived once per transaction, just before it commits (``facts.refresh_marked``), so a
batch of events for one child costs one refresh and the facts never disagree with the timelines they
come from. The projection does not depend on arrival order; a referral version that arrives while an
earlier one is missing (the broker lost it and it is being published again) is counted and logged."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.consumer import PermanentError
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import OrganisationV1, ReferralEventV1, ServiceV1, validated_payload
from send_shared.metrics import CONSUMER_VERSION_GAPS
from waitlists.adapters import facts, projection
from waitlists.adapters.projection import Fitting, Unprojectable, projectable

log = logging.getLogger(__name__)
CONSUMER_GROUP = "waitlists"


async def on_referral_event(event: CloudEvent, session: AsyncSession) -> None:
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if isinstance(payload, ReferralEventV1):
        await _record_referral(session, _projectable(event, payload))
    elif isinstance(payload, ServiceV1):
        if await projection.record_service(session, _projectable(event, payload)):
            facts.mark_service(session, payload.service_id)
    elif isinstance(payload, OrganisationV1):
        await projection.record_organisation(session, _projectable(event, payload))


def _projectable(event: CloudEvent, payload: Fitting) -> Fitting:
    try:
        return projectable(payload)
    except Unprojectable as exc:  # never worth a retry: parked at once
        raise PermanentError(f"{event.type} {event.id}: {exc}") from exc


async def _record_referral(session: AsyncSession, payload: ReferralEventV1) -> None:
    held = await projection.latest_version(session, payload.referral_id)
    if payload.version > held + 1:
        CONSUMER_VERSION_GAPS.labels(CONSUMER_GROUP).inc()
        log.warning(
            "referral version arrived before an earlier one",
            extra={"referral_id": payload.referral_id, "version": payload.version, "held": held},
        )
    await projection.record_referral_change(session, payload)
    facts.mark_child(session, payload.child_ref)
