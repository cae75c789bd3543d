"""Which referrals an organisation lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from referrals.domain.codes import Urgency
from referrals.domain.lifecycle import Status


@dataclass(frozen=True, slots=True)
class ListFilter:
    organisation_id: str
    role: str
    """``referrer`` lists the referrals the organisation sent, ``receiver`` those it receives; no other role
    lists any."""
    status: Status | None = None
    service_id: str | None = None
    urgency: Urgency | None = None
    referred_from: datetime | None = None
    referred_to: datetime | None = None
