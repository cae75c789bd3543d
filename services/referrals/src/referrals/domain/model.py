"""The Referral aggregate. Every accepted move bumps the version and records exactly one domain event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from referrals.domain.codes import EHC_OUTCOMES, HoldReason, NeedCode, Outcome, RejectionReason, Urgency
from referrals.domain.directory import Service
from referrals.domain.errors import DomainError
from referrals.domain.lifecycle import FINAL, Actor, Status, actor_may_move, allowed_moves


class IllegalMove(DomainError):
    def __init__(self, current: Status, target: Status, allowed: frozenset[Status]) -> None:
        super().__init__(f"cannot move a {current.value} referral to {target.value}")
        self.current = current
        self.target = target
        self.allowed = sorted(s.value for s in allowed)


class NotYourMove(DomainError):
    def __init__(self, actor: Actor, target: Status) -> None:
        super().__init__(f"the {actor.value} may not move a referral to {target.value}")


class MissingDetail(DomainError):
    """A move lacks data it needs, or carries data that breaks a rule; names the field and the rule."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class UrgencyNotOffered(MissingDetail):
    def __init__(self, service: Service) -> None:
        super().__init__("urgency", "offered_by_service", f"{service.name} takes {', '.join(service.urgencies)}")


class DuplicateReferral(DomainError):
    """The child already has an open referral at the service: one open referral per child and service."""

    def __init__(self, existing: Referral) -> None:
        super().__init__("this child already has an open referral at this service")
        self.existing = existing


def check_urgency_offered(service: Service, urgency: Urgency) -> None:
    if urgency not in service.urgencies:
        raise UrgencyNotOffered(service)


def check_no_open_duplicate(open_referrals: Iterable[Referral], service_id: str) -> None:
    """``open_referrals`` are the child's open referrals."""
    for other in open_referrals:
        if other.service_id == service_id:
            raise DuplicateReferral(other)


def check_not_in_future(occurred_at: datetime, now: datetime) -> None:
    if occurred_at > now:
        raise MissingDetail("occurred_at", "not_in_future", "occurred_at must not be in the future")


@dataclass(frozen=True, slots=True)
class MoveDetails:
    """What a move carries besides its target. Free text (``explanation``) never leaves this service."""

    reason_code: str | None = None
    explanation: str | None = None
    signposted_service_id: str | None = None
    rereferral_service_id: str | None = None
    target_service_id: str | None = None
    appointment_at: datetime | None = None
    expected_resume: date | None = None
    outcome_code: str | None = None


@dataclass(frozen=True)
class StatusChanged:
    """Domain event: one per accepted move (and one for the submission)."""

    referral_id: str
    version: int
    status: Status
    previous_status: Status | None
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    recorded_by: str
    """The organisation that recorded the move (an import or a hand-off may record a move whose actor is the
    other party's role); history shows it, never the other party."""
    details: MoveDetails = MoveDetails()
    linked_referral_id: str | None = None


def check_details(target: Status, d: MoveDetails, *, is_ehc: bool) -> None:
    """The data each move needs (brief §3 and issue 4)."""
    if target is Status.REJECTED:
        _require_code(d.reason_code, RejectionReason, "reason_code")
        if not (d.explanation and d.explanation.strip()):
            raise MissingDetail("explanation", "required", "a rejection needs an explanation")
        if not (d.signposted_service_id or d.rereferral_service_id):
            raise MissingDetail(
                "signposted_service_id",
                "signpost_or_rereferral_required",
                "a rejection is never a dead end: give a signposted service or a re-referral",
            )
    elif target is Status.ON_HOLD:
        _require_code(d.reason_code, HoldReason, "reason_code")
        if d.expected_resume is None:
            raise MissingDetail("expected_resume", "required", "a hold needs an expected resume date")
    elif target is Status.SCHEDULED:
        if d.appointment_at is None:
            raise MissingDetail("appointment_at", "required", "scheduling needs the appointment time")
    elif target is Status.COMPLETED:
        outcome = _require_code(d.outcome_code, Outcome, "outcome_code")
        if is_ehc != (outcome in EHC_OUTCOMES):
            allowed = "plan_issued or no_plan" if is_ehc else "support_completed, discharged or disengaged"
            raise MissingDetail("outcome_code", "outcome_for_service", f"this service's outcomes are {allowed}")
    elif target is Status.HANDED_OFF and not d.target_service_id:
        raise MissingDetail("target_service_id", "required", "a hand-off needs the receiving service")


def _require_code(value: str | None, codes: type[RejectionReason | HoldReason | Outcome], name: str) -> str:
    allowed = [c.value for c in codes]
    if value not in allowed:
        raise MissingDetail(name, "one_of", f"{name} must be one of {', '.join(allowed)}")
    return value


@dataclass(eq=False)
class Referral:
    id: str
    child_ref: str
    referrer_org_id: str
    service_id: str
    receiving_org_id: str
    urgency: Urgency
    referred_at: datetime
    primary_need: NeedCode = NeedCode.OTH
    secondary_need: NeedCode | None = None
    is_ehc: bool = False
    status: Status = Status.SUBMITTED
    held_from: Status | None = None
    version: int = 0
    linked_from_id: str | None = None
    linked_to_id: str | None = None
    parallel_referral_ids: tuple[str, ...] = ()
    last_details: MoveDetails = MoveDetails()
    status_at: datetime | None = None
    events: list[StatusChanged] = field(default_factory=list, repr=False)

    @classmethod
    def submit(
        cls,
        *,
        id: str,
        child_ref: str,
        referrer_org_id: str,
        service_id: str,
        receiving_org_id: str,
        urgency: Urgency,
        referred_at: datetime,
        recorded_at: datetime,
        primary_need: NeedCode = NeedCode.OTH,
        secondary_need: NeedCode | None = None,
        is_ehc: bool = False,
        linked_from_id: str | None = None,
        parallel_referral_ids: tuple[str, ...] = (),
        recorded_by: str | None = None,
    ) -> Referral:
        referral = cls(
            id=id,
            child_ref=child_ref,
            referrer_org_id=referrer_org_id,
            service_id=service_id,
            receiving_org_id=receiving_org_id,
            urgency=urgency,
            referred_at=referred_at,
            primary_need=primary_need,
            secondary_need=secondary_need,
            is_ehc=is_ehc,
            linked_from_id=linked_from_id,
            parallel_referral_ids=parallel_referral_ids,
        )
        referral._record(
            Status.SUBMITTED,
            None,
            Actor.REFERRER,
            referral.referred_at,
            recorded_at,
            MoveDetails(),
            linked_from_id,
            recorded_by or referrer_org_id,
        )
        return referral

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def is_open(self) -> bool:
        return not self.is_final

    def allowed_moves(self) -> frozenset[Status]:
        return allowed_moves(self.status, self.held_from)

    def move(
        self,
        target: Status,
        *,
        actor: Actor,
        occurred_at: datetime,
        recorded_at: datetime,
        details: MoveDetails = MoveDetails(),
        linked_referral_id: str | None = None,
        recorded_by: str | None = None,
    ) -> StatusChanged:
        allowed = self.allowed_moves()
        if target not in allowed:
            raise IllegalMove(self.status, target, allowed)
        if not actor_may_move(actor, target):
            raise NotYourMove(actor, target)
        check_details(target, details, is_ehc=self.is_ehc)
        if self.status_at is not None and occurred_at < self.status_at:
            raise MissingDetail("occurred_at", "not_before_previous_move", "a move cannot precede the one before it")
        previous = self.status
        if target is Status.ON_HOLD:
            if previous is not Status.ON_HOLD:  # a new hold reason keeps the status the referral left
                self.held_from = previous
        elif previous is Status.ON_HOLD:
            self.held_from = None
        self.status = target
        if linked_referral_id:
            self.linked_to_id = linked_referral_id
        if recorded_by is None:
            recorded_by = self.referrer_org_id if actor is Actor.REFERRER else self.receiving_org_id
        return self._record(target, previous, actor, occurred_at, recorded_at, details, linked_referral_id, recorded_by)

    def _record(
        self,
        status: Status,
        previous: Status | None,
        actor: Actor,
        occurred_at: datetime,
        recorded_at: datetime,
        details: MoveDetails,
        linked_referral_id: str | None,
        recorded_by: str,
    ) -> StatusChanged:
        self.version += 1
        self.status_at = occurred_at
        self.last_details = details
        event = StatusChanged(
            referral_id=self.id,
            version=self.version,
            status=status,
            previous_status=previous,
            actor=actor,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            details=details,
            linked_referral_id=linked_referral_id,
            recorded_by=recorded_by,
        )
        self.events.append(event)
        return event

    def seen_by(self, organisation_id: str) -> bool:
        """Only the referrer and the receiving organisation see a referral: its details, its history, its
        clocks, even its id. To anyone else it does not exist."""
        return organisation_id in (self.referrer_org_id, self.receiving_org_id)

    def readable_by(self, organisation_id: str, role: str) -> bool:
        """Who may read the referral and the child's personal details: the referring organisation's
        ``referrer`` role and the receiving organisation's ``receiver`` role, nobody else (not ``ops``,
        not ``admin``, not ``platform_admin``, not the other role of either party)."""
        return (role == Actor.REFERRER.value and organisation_id == self.referrer_org_id) or (
            role == Actor.RECEIVER.value and organisation_id == self.receiving_org_id
        )

    def actor_for(self, organisation_id: str, role: str, target: Status) -> Actor:
        """The party the caller acts as: the referrer role of the referring organisation or the receiver role of
        the receiving one; anyone else may make no move."""
        if role == Actor.REFERRER.value and organisation_id == self.referrer_org_id:
            return Actor.REFERRER
        if role == Actor.RECEIVER.value and organisation_id == self.receiving_org_id:
            return Actor.RECEIVER
        raise NotYourMove(Actor.REFERRER if role == Actor.REFERRER.value else Actor.RECEIVER, target)

    def check_onward_service(self, service_id: str, field: str) -> None:
        """A hand-off or re-referral goes to another service."""
        if service_id == self.service_id:
            raise MissingDetail(field, "different_service", "the onward service must be another service")

    def linked_copy(
        self,
        *,
        id: str,
        service_id: str,
        receiving_org_id: str,
        is_ehc: bool,
        at: datetime,
        recorded_at: datetime,
        recorded_by: str | None = None,
    ) -> Referral:
        """The referral a hand-off or re-referral opens at another service, for the same child and referrer."""
        return Referral.submit(
            id=id,
            child_ref=self.child_ref,
            referrer_org_id=self.referrer_org_id,
            service_id=service_id,
            receiving_org_id=receiving_org_id,
            urgency=self.urgency,
            referred_at=at,
            recorded_at=recorded_at,
            primary_need=self.primary_need,
            secondary_need=self.secondary_need,
            is_ehc=is_ehc,
            linked_from_id=self.id,
            recorded_by=recorded_by,
        )
