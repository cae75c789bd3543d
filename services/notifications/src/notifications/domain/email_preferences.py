"""Which emails an organisation wants for its contacts, and when each email goes. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from notifications.domain.email_policy import EmailIntent, Template

URGENT = frozenset({"urgent", "very_urgent"})


class NewReferralEmails(StrEnum):
    """How an organisation hears of the referrals it receives: urgent ones at once and the others in the daily
    digest, all in the digest, or not by email."""

    URGENT_AT_ONCE_OTHERS_IN_DIGEST = "urgent_at_once_others_in_digest"
    DIGEST_ONLY = "digest_only"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class EmailPreferences:
    """An organisation's choices. The defaults are what an organisation that never chose gets: breach alerts
    as before, and new referrals (urgent ones at once, the others in the daily digest)."""

    new_referrals: NewReferralEmails = NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST
    breach_alerts: bool = True


class Routing(StrEnum):
    """What becomes of an email intent."""

    AT_ONCE = "at_once"
    IN_DIGEST = "in_digest"
    NOT_SENT = "not_sent"


def routing(intent: EmailIntent, preferences: EmailPreferences) -> Routing:
    """Whether ``intent`` is emailed at once, waits for the organisation's daily digest, or is not sent."""
    if intent.template is Template.BREACH_IMMINENT:
        return Routing.AT_ONCE if preferences.breach_alerts else Routing.NOT_SENT
    if intent.template is not Template.NEW_REFERRAL:
        return Routing.AT_ONCE
    match preferences.new_referrals:
        case NewReferralEmails.OFF:
            return Routing.NOT_SENT
        case NewReferralEmails.DIGEST_ONLY:
            return Routing.IN_DIGEST
        case NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST:
            return Routing.AT_ONCE if intent.context.get("urgency") in URGENT else Routing.IN_DIGEST
