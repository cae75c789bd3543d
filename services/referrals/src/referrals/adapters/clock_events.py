"""Waitlists' events as this service takes them: the clocks it tells of a referral, a clock nearing breach, and
a service's predicted wait, checked against their schema (a violation is never retried: the consumer parks it)."""

from __future__ import annotations

from dataclasses import dataclass

from referrals.domain.deadlines import ClockState, ReferralClocks
from referrals.domain.interim import WaitEstimate
from send_shared.consumer import PermanentError
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    ClockAlertV1,
    ReferralClocksV1,
    WaitEstimateV1,
    validated_payload,
)

_ID_LENGTH = 36  # referral_clocks.referral_id
_DIRECTORY_ID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class BreachImminent:
    """A clock of this referral nears breach: time to signpost support while waiting."""

    referral_id: str


def clocks_from_event(event: CloudEvent) -> ReferralClocks | None:
    """The clocks an event tells; None for any other of waitlists' events."""
    found = from_waitlists_event(event)
    return found if isinstance(found, ReferralClocks) else None


def from_waitlists_event(event: CloudEvent) -> ReferralClocks | BreachImminent | WaitEstimate | None:
    """What this service takes from one of waitlists' events; None for the rest (a breach, say)."""
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if isinstance(payload, ReferralClocksV1):
        return _clocks(event, payload)
    if isinstance(payload, ClockAlertV1) and event.type == CLOCK_BREACH_IMMINENT:
        if len(payload.referral_id) > _ID_LENGTH:
            raise PermanentError(f"{event.type} {event.id}: an id longer than its column")
        return BreachImminent(payload.referral_id)
    if isinstance(payload, WaitEstimateV1):
        if len(payload.service_id) > _DIRECTORY_ID_LENGTH:
            raise PermanentError(f"{event.type} {event.id}: an id longer than its column")
        return WaitEstimate(
            service_id=payload.service_id,
            as_of=payload.as_of,
            window_weeks=payload.window_weeks,
            children=payload.children,
            enough_data=payload.enough_data,
            to_support_median_days=payload.to_support_median_days,
            to_support_p90_days=payload.to_support_p90_days,
            to_support_p90_low_days=payload.to_support_p90_low_days,
            to_support_p90_high_days=payload.to_support_p90_high_days,
            to_clock_stop_median_days=payload.to_clock_stop_median_days,
            to_clock_stop_p90_days=payload.to_clock_stop_p90_days,
        )
    return None


def _clocks(event: CloudEvent, payload: ReferralClocksV1) -> ReferralClocks:
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
