"""The daily digest of new referrals: when it is due, what it covers, and the email it makes. Pure Python.

Each organisation gets at most one digest a day, at a set local time; it lists the new referrals recorded
since its last digest (up to that time). One sent late, after a restart say, covers the same referrals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from notifications.domain.email_policy import ContextValue, EmailIntent, Scalar, Template

MAX_LISTED = 200  # a longer digest lists the first ones and says how many more there are
_LINE_FIELDS = ("referral_id", "service_id", "urgency", "primary_need", "occurred_at")


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    at: time  # local time of day, naive
    zone: ZoneInfo

    def due_day(self, now: datetime) -> date | None:
        """The local day whose digest is due at ``now``: today once its time has come, otherwise none."""
        local = now.astimezone(self.zone)
        return local.date() if local.time() >= self.at else None

    def cutoff(self, day: date) -> datetime:
        """When ``day``'s digest is due (UTC): it covers the new referrals recorded before then."""
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """A new referral waiting for its organisation's next digest: the new-referral email's context."""

    id: int
    organisation_id: str
    context: dict[str, ContextValue]


def digest_event_id(day: date) -> str:
    """What the email queue keys a digest on, with the organisation and template: one a day each."""
    return f"digest:{day.isoformat()}"


def digest_intent(organisation_id: str, day: date, new_referrals: Sequence[Mapping[str, ContextValue]]) -> EmailIntent:
    """The digest email for the organisation's ``new_referrals`` (each a new-referral email's context)."""
    listed = [{name: _scalar(referral.get(name)) for name in _LINE_FIELDS} for referral in new_referrals[:MAX_LISTED]]
    context: dict[str, ContextValue] = {
        "digest_date": day.isoformat(),
        "count": len(new_referrals),
        "referrals": listed,
        "not_listed": len(new_referrals) - len(listed),
    }
    return EmailIntent(organisation_id, Template.NEW_REFERRALS_DIGEST, context)


def _scalar(value: ContextValue) -> Scalar:
    return None if isinstance(value, list) else value
