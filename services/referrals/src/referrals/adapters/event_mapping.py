"""Domain events to public CloudEvents (no personal data crosses this line)."""

from __future__ import annotations

from referrals.domain.model import Referral, StatusChanged
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ReferralEventV1, referral_event_type


def to_cloud_event(referral: Referral, change: StatusChanged, *, source: str, event_id: str) -> CloudEvent:
    payload = ReferralEventV1(
        referral_id=referral.id,
        version=change.version,
        status=change.status,
        previous_status=change.previous_status,
        child_ref=referral.child_ref,
        referrer_org_id=referral.referrer_org_id,
        service_id=referral.service_id,
        receiving_org_id=referral.receiving_org_id,
        urgency=referral.urgency,
        occurred_at=change.occurred_at,
        recorded_at=change.recorded_at,
        reason_code=change.reason_code,
        outcome_code=change.outcome_code,
    )
    return CloudEvent(
        id=event_id,
        type=referral_event_type(change.status),
        source=source,
        subject=referral.id,
        time=change.recorded_at,
        data=payload.model_dump(mode="json"),
        extensions={"referralversion": str(change.version)},
    )
