"""Which emails an event causes, and to which organisation. Pure Python.

An email carries only ids, codes and dates, never personal data: the recipient follows
the link to the referral in the referrals API, where authorised users see the details.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    ConsentStatus,
    ReferralStatus,
    consent_event_type,
    referral_event_type,
)

Scalar = str | int | None
ContextValue = Scalar | list[dict[str, Scalar]]  # a list only in the digest: one entry per referral

# The one clock a service sets for itself; every other clock is a legal or national standard.
NON_STATUTORY_CLOCKS = frozenset({"service_target"})


class Template(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    HANDED_OFF = "handed_off"
    BREACH_IMMINENT = "breach_imminent"
    NEW_REFERRAL = "new_referral"
    NEW_REFERRALS_DIGEST = "new_referrals_digest"
    CONSENT_WITHDRAWN = "consent_withdrawn"


class Audience(StrEnum):
    REFERRER = "referrer"  # the school's SENCO
    RECEIVER = "receiver"  # the agency contact of the receiving service


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    NO_CONTACT = "no_contact"  # the organisation has given no address


# After a transient failure (a 4xx reply, no connection), the next try waits this long; then it has failed.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


def next_try(attempts_made: int, *, transient: bool, now: datetime) -> datetime | None:
    """When to try an email again after ``attempts_made`` failed tries; None when it has failed for good."""
    if not transient or attempts_made > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts_made - 1]


_ORGANISATION_FIELD = {Audience.REFERRER: "referrer_org_id", Audience.RECEIVER: "receiving_org_id"}


@dataclass(frozen=True, slots=True)
class EmailIntent:
    """One email to send to one organisation's contacts: template name and non-personal values."""

    organisation_id: str
    template: Template
    context: dict[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuedEmail:
    """An email intent waiting in the queue, with how many tries it has had."""

    id: int
    intent: EmailIntent
    attempts: int


_REFERRAL_FIELDS = ("referral_id", "status", "previous_status", "service_id", "referrer_org_id", "receiving_org_id")
_REFERRAL_TEMPLATES: dict[str, tuple[Template, tuple[str, ...]]] = {
    referral_event_type(ReferralStatus.ACCEPTED): (Template.ACCEPTED, ("occurred_at",)),
    referral_event_type(ReferralStatus.REJECTED): (
        Template.REJECTED,
        ("occurred_at", "reason_code", "signposted_service_id", "linked_referral_id", "onward_service_id"),
    ),
    referral_event_type(ReferralStatus.SCHEDULED): (Template.SCHEDULED, ("appointment_at",)),
    referral_event_type(ReferralStatus.HANDED_OFF): (
        Template.HANDED_OFF,
        ("occurred_at", "linked_referral_id", "signposted_service_id", "onward_service_id"),
    ),
}
# A referral is new for its receiver when it is submitted, whether by the referrer or by a hand-off.
NEW_REFERRAL_FIELDS = ("referral_id", "service_id", "receiving_org_id", "urgency", "primary_need", "occurred_at")
# Both parties must act on a withdrawal of consent: the receiver stops or closes the work, the referrer stops sharing.
_CONSENT_FIELDS = (
    "referral_id",
    "service_id",
    "referrer_org_id",
    "receiving_org_id",
    "consent_status",
    "given_by",
    "occurred_at",
)
_ALERT_FIELDS = (
    "referral_id",
    "clock",
    "service_id",
    "referrer_org_id",
    "receiving_org_id",
    "target_days",
    "start_date",
    "breach_date",
    "waiting_days",
    "raised_on",
)


def email_intents(
    event_type: str, data: Mapping[str, Any], concerned: Collection[str] | None = None
) -> list[EmailIntent]:
    """The emails ``event_type`` with payload ``data`` causes (none for most events), to the organisations
    ``concerned`` only when given (``subscriptions.organisations_concerned``: while consent is withdrawn, not
    the referrer)."""
    intents = _all_intents(event_type, data)
    return intents if concerned is None else [i for i in intents if i.organisation_id in concerned]


def _all_intents(event_type: str, data: Mapping[str, Any]) -> list[EmailIntent]:
    if event_type in _REFERRAL_TEMPLATES:
        template, extra = _REFERRAL_TEMPLATES[event_type]
        return _addressed(data, (Audience.REFERRER,), template, _pick(data, _REFERRAL_FIELDS + extra))
    if event_type == referral_event_type(ReferralStatus.SUBMITTED):
        return _addressed(data, (Audience.RECEIVER,), Template.NEW_REFERRAL, _pick(data, NEW_REFERRAL_FIELDS))
    if event_type == CLOCK_BREACH_IMMINENT and is_statutory(data.get("clock")):
        audiences = (Audience.REFERRER, Audience.RECEIVER)
        return _addressed(data, audiences, Template.BREACH_IMMINENT, _pick(data, _ALERT_FIELDS))
    if event_type == consent_event_type(ConsentStatus.WITHDRAWN):
        audiences = (Audience.REFERRER, Audience.RECEIVER)
        return _addressed(data, audiences, Template.CONSENT_WITHDRAWN, _pick(data, _CONSENT_FIELDS))
    return []


def is_statutory(clock: object) -> bool:
    return isinstance(clock, str) and bool(clock) and clock not in NON_STATUTORY_CLOCKS


def _addressed(
    data: Mapping[str, Any], audiences: Iterable[Audience], template: Template, context: Mapping[str, Scalar]
) -> list[EmailIntent]:
    intents: list[EmailIntent] = []
    for audience in audiences:
        organisation = data.get(_ORGANISATION_FIELD[audience])
        if not organisation or any(i.organisation_id == organisation for i in intents):
            continue
        intents.append(EmailIntent(str(organisation), template, {**context, "audience": audience.value}))
    return intents


def _pick(data: Mapping[str, Any], names: Iterable[str]) -> dict[str, Scalar]:
    """Only the named fields, as strings or integers (dates in ISO 8601); a missing one is None."""
    return {name: _plain(data.get(name)) for name in names}


def _plain(value: object) -> Scalar:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
