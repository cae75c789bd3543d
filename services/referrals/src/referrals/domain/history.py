"""What a referral's history shows: one record per accepted move, as recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral, StatusChanged
from send_shared.events.schemas import referral_event_type


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    referral_id: str
    version: int
    event_id: str
    event_type: str
    status: Status
    previous_status: Status | None
    reason_code: str | None
    outcome_code: str | None
    explanation: str | None
    linked_referral_id: str | None
    actor_org_id: str | None
    occurred_at: datetime
    recorded_at: datetime


def history_record(referral: Referral, change: StatusChanged, event_id: str) -> HistoryRecord:
    """The record of ``change``, published as the event ``event_id``."""
    return HistoryRecord(
        referral_id=referral.id,
        version=change.version,
        event_id=event_id,
        event_type=referral_event_type(change.status),
        status=change.status,
        previous_status=change.previous_status,
        reason_code=change.details.reason_code,
        outcome_code=change.details.outcome_code,
        explanation=change.details.explanation,
        linked_referral_id=change.linked_referral_id,
        actor_org_id=change.recorded_by,
        occurred_at=change.occurred_at,
        recorded_at=change.recorded_at,
    )
