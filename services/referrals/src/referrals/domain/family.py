"""The family view (issue 17): private links for a family, and the plain words their page uses.

A link is per child (its ``child_ref``): it shows every referral of that child in this store and nothing else.
The token is 256 random bits (``secrets.token_urlsafe(32)``); only its SHA-256 is kept, so the store alone never
opens a page. A link works until it expires or is revoked, whichever comes first.

The words are for a family, at a reading age of about 9 to 11: short sentences, everyday words, no codes, and
never a professional's free text or internal note."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from referrals.domain.codes import HoldReason, Outcome, RejectionReason
from referrals.domain.errors import DomainError
from referrals.domain.lifecycle import Status
from referrals.domain.model import MissingDetail
from send_shared.events.schemas import ConsentGiver, ConsentStatus

TOKEN_BYTES = 32
"""256 bits of randomness per link (the issue asks for at least 128)."""
DEFAULT_DAYS = 30
MAX_DAYS = 90
FAMILY = "family"
"""The organisation id and role the audit log records for a family's own actions."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class LinkState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class FamilyLink:
    id: str
    token_hash: str
    child_ref: str
    referral_id: str
    """The referral the link was made from (the page shows every referral of the child)."""
    issued_by_org_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> LinkState:
        if self.revoked_at is not None:
            return LinkState.REVOKED
        if now >= self.expires_at:
            return LinkState.EXPIRED
        return LinkState.ACTIVE


def link_lifetime(days: int | None) -> timedelta:
    chosen = DEFAULT_DAYS if days is None else days
    if not 1 <= chosen <= MAX_DAYS:
        raise MissingDetail("expires_in_days", "between_1_and_90", f"a link lasts 1 to {MAX_DAYS} days")
    return timedelta(days=chosen)


class NoContactEmail(MissingDetail):
    def __init__(self) -> None:
        super().__init__("email", "contact_email_required", "the family has no contact email: give one in the body")


class LinkRefused(DomainError):
    """The page's token is unknown, expired or revoked; ``state`` says which (None: unknown)."""

    def __init__(self, state: LinkState | None) -> None:
        super().__init__("this link does not open a page")
        self.state = state


class ContactPreference(StrEnum):
    """How the family would like services to get in touch."""

    EMAIL = "email"
    PHONE = "phone"
    TEXT = "text"
    LETTER = "letter"


CONTACT_PREFERENCE_WORDS = {
    ContactPreference.EMAIL: "Email",
    ContactPreference.PHONE: "Phone call",
    ContactPreference.TEXT: "Text message",
    ContactPreference.LETTER: "Letter",
}


@dataclass(frozen=True, slots=True)
class FamilyContact:
    email: str | None = None
    phone: str | None = None
    preference: ContactPreference | None = None


@dataclass(frozen=True, slots=True)
class Wording:
    """What a status, reason or outcome means, and what happens next, in plain words."""

    now: str
    next: str


STATUS_WORDS: dict[Status, Wording] = {
    Status.SUBMITTED: Wording(
        "The request for help has been sent to the service.",
        "The service will read it. Then they will tell you if they can help.",
    ),
    Status.ACKNOWLEDGED: Wording(
        "The service has got the request. They are looking at it now.",
        "They will soon say if they can help. They may call you to ask some questions.",
    ),
    Status.ACCEPTED: Wording(
        "The service has said yes. They can help your child.",
        "They will get in touch to find a time to meet.",
    ),
    Status.SCHEDULED: Wording(
        "A time to meet has been booked.",
        "Please go to the meeting. If you cannot go, call the service as soon as you can.",
    ),
    Status.IN_PROGRESS: Wording(
        "Your child is now getting help from the service.",
        "The help will go on until you and the service agree it is done.",
    ),
    Status.ON_HOLD: Wording(
        "The work has stopped for a short time.",
        "It will start again when the reason below is sorted out.",
    ),
    Status.HANDED_OFF: Wording(
        "The service has passed the request on to a service that can help more.",
        "The new service will read it. You can see it on this page too.",
    ),
    Status.REJECTED: Wording(
        "The service has said it cannot help this time.",
        "They have said where else you can get help. Ask the school or the service what to do next.",
    ),
    Status.COMPLETED: Wording(
        "The work with this service has ended.",
        "You do not need to do anything. If you are worried, you can ask for help again.",
    ),
    Status.WITHDRAWN: Wording(
        "The request for help has been stopped.",
        "Nothing more will happen with it. Talk to the school if you want to start again.",
    ),
    Status.ENTERED_IN_ERROR: Wording(
        "This request was made by mistake.",
        "Nothing will happen with it. You do not need to do anything.",
    ),
}

HOLD_REASON_WORDS: dict[HoldReason, Wording] = {
    HoldReason.FAMILY_UNAVAILABLE: Wording(
        "Your family cannot meet just now.",
        "Tell the service when you are free. Then they will start again.",
    ),
    HoldReason.APPOINTMENT_DECLINED: Wording(
        "A time to meet was turned down.",
        "The service will get in touch to find a new time.",
    ),
    HoldReason.SCHOOL_CLOSED_4_WEEKS: Wording(
        "The school is shut for four weeks or more.",
        "The work will start again when the school opens.",
    ),
    HoldReason.CHILD_OR_PARENT_AWAY_4_WEEKS: Wording(
        "Your child or a parent is away for four weeks or more.",
        "The work will start again when you are back. Tell the service when you are home.",
    ),
    HoldReason.EXCEPTIONAL_PERSONAL_CIRCUMSTANCES: Wording(
        "Things are hard for your family right now.",
        "The service will wait until you are ready. Tell them when you want to go on.",
    ),
    HoldReason.MISSED_APPOINTMENT_NO_NOTICE: Wording(
        "A meeting was missed and the service was not told.",
        "Call the service to book a new time.",
    ),
    HoldReason.AWAITING_INFORMATION: Wording(
        "The service is waiting for some facts it needs.",
        "The work will start again when the service gets them.",
    ),
    HoldReason.SERVICE_CAPACITY: Wording(
        "The service is very busy, so your child has to wait.",
        "The service will start again as soon as it can.",
    ),
}

REJECTION_WORDS: dict[RejectionReason, str] = {
    RejectionReason.THRESHOLD_NOT_MET: "The service only helps with needs that are more serious.",
    RejectionReason.OUTSIDE_REMIT: "This kind of need is not one this service helps with.",
    RejectionReason.INSUFFICIENT_INFORMATION: "The service did not have enough facts to decide.",
    RejectionReason.NEEDS_MET_ELSEWHERE: "Your child already gets this help from someone else.",
    RejectionReason.DUPLICATE: "The service already has the same request.",
}

OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.PLAN_ISSUED: "Your child now has an EHC plan.",
    Outcome.NO_PLAN: "The council decided your child does not need an EHC plan.",
    Outcome.SUPPORT_COMPLETED: "The help your child needed is done.",
    Outcome.DISCHARGED: "The service has closed your child's case.",
    Outcome.DISENGAGED: "The service closed the case after it could not reach you.",
}

GIVER_WORDS: dict[ConsentGiver, str] = {
    ConsentGiver.PARENT: "a parent",
    ConsentGiver.CARER: "a carer",
    ConsentGiver.YOUNG_PERSON: "the young person",
    ConsentGiver.LOCAL_AUTHORITY: "the council",
}

CONSENT_WORDS: dict[ConsentStatus | None, Wording] = {
    ConsentStatus.GIVEN: Wording(
        "You said yes to sharing this request. These may see it:",
        "If you change your mind, you can say no below.",
    ),
    ConsentStatus.CHANGED: Wording(
        "You said yes to sharing this request. These may see it:",
        "If you change your mind, you can say no below.",
    ),
    ConsentStatus.WITHDRAWN: Wording(
        "You said no to sharing this request. It is not sent to any new service.",
        "If you want to say yes again, talk to the school or the service.",
    ),
    None: Wording(
        "We do not have a record of your yes to sharing.",
        "Talk to the school if you have questions.",
    ),
}

WITHDRAW_WORDS = Wording(
    "If you say no, the request will not be sent to any new service. If the service has not said yes yet, "
    "the request will stop.",
    "If the service already helps your child, they will be told. They will talk to you about what to do.",
)


def status_wording(status: Status) -> Wording:
    return STATUS_WORDS[status]


def hold_wording(reason_code: str | None) -> Wording | None:
    try:
        return HOLD_REASON_WORDS[HoldReason(reason_code)] if reason_code else None
    except ValueError:
        return None


def rejection_words(reason_code: str | None) -> str | None:
    try:
        return REJECTION_WORDS[RejectionReason(reason_code)] if reason_code else None
    except ValueError:
        return None


def outcome_words(outcome_code: str | None) -> str | None:
    try:
        return OUTCOME_WORDS[Outcome(outcome_code)] if outcome_code else None
    except ValueError:
        return None


def day_words(day: date | datetime | None) -> str | None:
    """``Tuesday 3 March 2026``: a date as a family reads it."""
    if day is None:
        return None
    return f"{day:%A} {day.day} {day:%B %Y}"


@dataclass(frozen=True, slots=True)
class LinkEmail:
    """An email carrying a link, queued with it; the token is kept only until it is sent (or given up)."""

    id: int
    link_id: str
    to_address: str
    token: str
    attempts: int
    queued_at: datetime


RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


def next_email_try(attempts_made: int, *, transient: bool, now: datetime) -> datetime | None:
    """When to try a link's email again after ``attempts_made`` failed tries; None: give up (the token goes)."""
    if not transient or attempts_made > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts_made - 1]
