"""Waitlists' events as this service takes them: the clocks it tells of a referral, checked against their
schema (a violation is never retried: the consumer parks it)."""

from __future__ import annotations

from referrals.domain.deadlines import ClockState, ReferralClocks
from send_shared.consumer import PermanentError
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ReferralClocksV1, validated_payload

_ID_LENGTH = 36  # referral_clocks.referral_id
_DIRECTORY_ID_LENGTH = 64


def clocks_from_event(event: CloudEvent) -> ReferralClocks | None:
    """The clocks an event tells; None for any other of waitlists' events (the breach alerts)."""
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if not isinstance(payload, ReferralClocksV1):
        return None
    if len(payload.referral_id) > _ID_LENGTH or len(payload.service_id) > _DIRECTORY_ID_LENGTH:
        raise PermanentError(f"{event.type} {event.id}: an id longer than its column")
    return ReferralClocks(
        referral_id=payload.referral_id,
        referral_version=payload.referral_version,
        service_id=payload.service_id,
        clocks=tuple(
            ClockState(c.clock, c.target_days, c.start_date, c.state, c.breach_date, c.stopped_on, c.exception)
            for c in payload.clocks
        ),
    )
