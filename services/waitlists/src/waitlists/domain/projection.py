"""Rules for folding referral events into the current-state projection. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ReferralState:
    referral_id: str
    version: int
    status: str
    child_ref: str
    service_id: str
    receiving_org_id: str
    submitted_at: datetime | None
    status_since: datetime


def supersedes(incoming_version: int, stored_version: int | None) -> bool:
    """Events of different referrals can arrive in any order and one referral's may be redelivered:
    only a newer version replaces the stored state."""
    return stored_version is None or incoming_version > stored_version
