"""The Referral aggregate. Every change bumps the version and records one domain event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from referrals.domain.lifecycle import FINAL, Actor, Status, actor_may_move, allowed_moves


class DomainError(Exception):
    """A rule of the domain was broken."""


class IllegalMove(DomainError):
    def __init__(self, current: Status, target: Status, allowed: frozenset[Status]) -> None:
        super().__init__(f"cannot move a {current.value} referral to {target.value}")
        self.current = current
        self.target = target
        self.allowed = sorted(s.value for s in allowed)


class NotYourMove(DomainError):
    def __init__(self, actor: Actor, target: Status) -> None:
        super().__init__(f"a {actor.value} may not move a referral to {target.value}")


@dataclass(frozen=True)
class StatusChanged:
    """Domain event: one per accepted move (and one for the submission)."""

    referral_id: str
    version: int
    status: Status
    previous_status: Status | None
    occurred_at: datetime
    recorded_at: datetime
    reason_code: str | None = None
    outcome_code: str | None = None


@dataclass(eq=False)
class Referral:
    id: str
    child_ref: str
    referrer_org_id: str
    service_id: str
    receiving_org_id: str
    urgency: str
    referred_at: datetime
    status: Status = Status.SUBMITTED
    held_from: Status | None = None
    version: int = 0
    events: list[StatusChanged] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def submit(
        cls,
        *,
        id: str,
        child_ref: str,
        referrer_org_id: str,
        service_id: str,
        receiving_org_id: str,
        urgency: str,
        referred_at: datetime,
        recorded_at: datetime,
    ) -> Referral:
        referral = cls(
            id=id,
            child_ref=child_ref,
            referrer_org_id=referrer_org_id,
            service_id=service_id,
            receiving_org_id=receiving_org_id,
            urgency=urgency,
            referred_at=referred_at,
        )
        referral._record(Status.SUBMITTED, None, referred_at, recorded_at)
        return referral

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def allowed_moves(self) -> frozenset[Status]:
        return allowed_moves(self.status, self.held_from)

    def move(
        self,
        target: Status,
        *,
        actor: Actor,
        occurred_at: datetime,
        recorded_at: datetime,
        reason_code: str | None = None,
        outcome_code: str | None = None,
    ) -> StatusChanged:
        allowed = self.allowed_moves()
        if target not in allowed:
            raise IllegalMove(self.status, target, allowed)
        if not actor_may_move(actor, target):
            raise NotYourMove(actor, target)
        previous = self.status
        if target is Status.ON_HOLD:
            self.held_from = previous
        elif previous is Status.ON_HOLD:
            self.held_from = None
        self.status = target
        return self._record(target, previous, occurred_at, recorded_at, reason_code, outcome_code)

    def _record(
        self,
        status: Status,
        previous: Status | None,
        occurred_at: datetime,
        recorded_at: datetime,
        reason_code: str | None = None,
        outcome_code: str | None = None,
    ) -> StatusChanged:
        self.version += 1
        event = StatusChanged(
            referral_id=self.id,
            version=self.version,
            status=status,
            previous_status=previous,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            reason_code=reason_code,
            outcome_code=outcome_code,
        )
        self.events.append(event)
        return event
