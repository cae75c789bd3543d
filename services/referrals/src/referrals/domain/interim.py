"""Support while waiting (issue 18): interim offers in the directory, the wait waitlists predicts for a service,
and the signposts a referral gets to fitting offers when its wait is long or a clock nears breach. Pure Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import DirectoryConflict, Organisation, Service

MAX_SIGNPOSTS = 5
"""The most offers one signposting points to: a short list a family can act on."""


@dataclass(frozen=True, slots=True)
class InterimOffer:
    """Support a child can have while waiting for a service: a trust's in-house specialist, a voluntary
    organisation's group, a helpline. Directory data, never a person's."""

    id: str
    service_id: str
    """The service whose waiting children it suits (listed with that service)."""
    provider_org_id: str
    """Who provides it (directory id): the service's own organisation, a trust, a voluntary organisation."""
    name: str
    description: str
    """What it is, in plain English, for a family."""
    needs: tuple[NeedCode, ...]
    urgencies: tuple[Urgency, ...] = ()
    """The urgencies it suits; empty for any."""
    min_age: int | None = None
    max_age: int | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    contact_url: str | None = None
    active: bool = True
    version: int = 0

    def suits(self, needs: Sequence[str], urgency: str, age: int | None = None) -> bool:
        """Active, for one of the child's needs, its urgency and its age (in whole years; None when unknown, the
        child's details erased: then any age range suits)."""
        return (
            self.active
            and any(n in self.needs for n in needs)
            and (not self.urgencies or urgency in self.urgencies)
            and (
                age is None
                or ((self.min_age is None or self.min_age <= age) and (self.max_age is None or age <= self.max_age))
            )
        )


def check_offer(offer: InterimOffer, service: Service | None, provider: Organisation | None) -> None:
    if service is None:
        raise DirectoryConflict("service_id", "service_id must name a service in the directory")
    if provider is None:
        raise DirectoryConflict("provider_org_id", "provider_org_id must name an organisation in the directory")
    if not offer.contact_phone and not offer.contact_email and not offer.contact_url:
        raise DirectoryConflict("contact_phone", "an interim offer needs a way in: a phone, an email or a web page")
    if offer.min_age is not None and offer.max_age is not None and offer.min_age > offer.max_age:
        raise DirectoryConflict("min_age", "min_age must not be above max_age")


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """Waitlists' predicted wait at a service (``uk.send.waitlist.wait_estimate.v1``), as last told."""

    service_id: str
    as_of: date
    window_weeks: int
    children: int | None
    """Referrals behind it; None when 1 to 4 (disclosure control)."""
    enough_data: bool
    to_support_median_days: int | None = None
    to_support_p90_days: int | None = None
    to_support_p90_low_days: int | None = None
    to_support_p90_high_days: int | None = None
    to_clock_stop_median_days: int | None = None
    to_clock_stop_p90_days: int | None = None

    def long_wait(self, threshold_days: int) -> bool:
        """Whether nine in ten children wait longer than ``threshold_days`` to start (never without enough data)."""
        return self.enough_data and self.to_support_p90_days is not None and self.to_support_p90_days > threshold_days


class SignpostTrigger(StrEnum):
    LONG_WAIT = "long_wait"
    """The referral was accepted at a service whose predicted p90 to support is over the threshold."""
    CLOCK_BREACH_IMMINENT = "clock_breach_imminent"
    """One of the referral's clocks nears breach (waitlists' alert)."""


class TakenUpBy(StrEnum):
    REFERRER = "referrer"
    RECEIVER = "receiver"
    FAMILY = "family"


@dataclass(frozen=True, slots=True)
class Signpost:
    referral_id: str
    offer_id: str
    provider_org_id: str
    trigger: SignpostTrigger
    signposted_at: datetime
    taken_up_at: datetime | None = None
    taken_up_by: TakenUpBy | None = None
    position: int = 0
    """Its place in the signposting that made it (the service's own offers first)."""


class SignpostNotFound(Exception):
    """The referral was not signposted to this offer."""


def fitting_offers(
    offers: Sequence[InterimOffer],
    service_id: str,
    needs: Sequence[str],
    urgency: str,
    *,
    already: set[str],
    age: int | None = None,
) -> list[InterimOffer]:
    """The offers that suit the child's needs, urgency and age, the service's own offers first (then by id), leaving
    out those already signposted; at most ``MAX_SIGNPOSTS``."""
    found = [o for o in offers if o.id not in already and o.suits(needs, urgency, age)]
    found.sort(key=lambda o: (o.service_id != service_id, o.id))
    return found[:MAX_SIGNPOSTS]


def weeks(days: int | None) -> int | None:
    """Days as whole weeks, rounded up (a family plans for the longer wait)."""
    return None if days is None else max(1, -(-days // 7))


NOT_ENOUGH_DATA = "Not enough data yet to say how long children wait."


def wait_words(estimate: WaitEstimate | None) -> str:
    """The predicted wait in plain English (reading age 9 to 11)."""
    if estimate is None or not estimate.enough_data or estimate.to_support_median_days is None:
        return NOT_ENOUGH_DATA
    median = weeks(estimate.to_support_median_days)
    said = f"Most children wait about {median} week{'s' if median != 1 else ''}"
    p90 = weeks(estimate.to_support_p90_days)
    if p90 is None:
        return said + ". Some wait a lot longer."
    return said + f"; 9 in 10 start within {p90} week{'s' if p90 != 1 else ''}."
