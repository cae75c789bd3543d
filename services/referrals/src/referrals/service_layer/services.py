"""Use cases of the referrals service. Each runs in one unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.adapters.directory import Directory
from referrals.domain.child import child_reference
from referrals.domain.lifecycle import Actor, Status
from referrals.domain.model import DomainError, Referral
from referrals.service_layer.unit_of_work import UnitOfWork


class NotFound(DomainError):
    """No such referral, or not one the caller may see (the two are indistinguishable on purpose)."""


class UnknownService(DomainError):
    def __init__(self, service_id: str) -> None:
        super().__init__(f"no service {service_id!r} in the directory")
        self.service_id = service_id


class VersionMismatch(DomainError):
    def __init__(self, current: int) -> None:
        super().__init__(f"the referral is at version {current}")
        self.current = current


@dataclass(frozen=True)
class SubmitReferral:
    referrer_org_id: str
    service_id: str
    child_identifier: str
    urgency: str
    referred_at: datetime | None = None


@dataclass(frozen=True)
class MoveReferral:
    referral_id: str
    caller_org_id: str
    target: Status
    expected_version: int
    occurred_at: datetime | None = None
    reason_code: str | None = None
    outcome_code: str | None = None


def may_see(referral: Referral, organisation_id: str) -> bool:
    return organisation_id in (referral.referrer_org_id, referral.receiving_org_id)


async def submit_referral(cmd: SubmitReferral, uow: UnitOfWork, directory: Directory, child_ref_key: bytes) -> Referral:
    service = directory.service(cmd.service_id)
    if service is None:
        raise UnknownService(cmd.service_id)
    now = datetime.now(UTC)
    async with uow:
        referral = Referral.submit(
            id=str(uuid.uuid4()),
            child_ref=child_reference(cmd.child_identifier, child_ref_key),
            referrer_org_id=cmd.referrer_org_id,
            service_id=service.id,
            receiving_org_id=service.organisation_id,
            urgency=cmd.urgency,
            referred_at=cmd.referred_at or now,
            recorded_at=now,
        )
        await uow.referrals.add(referral)
        await uow.commit()
    return referral


async def get_referral(referral_id: str, caller_org_id: str, uow: UnitOfWork) -> Referral:
    async with uow:
        referral = await uow.referrals.get(referral_id)
    if referral is None or not may_see(referral, caller_org_id):
        raise NotFound(referral_id)
    return referral


async def move_referral(cmd: MoveReferral, uow: UnitOfWork) -> Referral:
    now = datetime.now(UTC)
    async with uow:
        referral = await uow.referrals.get(cmd.referral_id)
        if referral is None or not may_see(referral, cmd.caller_org_id):
            raise NotFound(cmd.referral_id)
        if referral.version != cmd.expected_version:
            raise VersionMismatch(referral.version)
        actor = Actor.REFERRER if cmd.caller_org_id == referral.referrer_org_id else Actor.RECEIVER
        if cmd.caller_org_id == referral.receiving_org_id and cmd.target is not Status.WITHDRAWN:
            actor = Actor.RECEIVER
        referral.move(
            cmd.target,
            actor=actor,
            occurred_at=cmd.occurred_at or now,
            recorded_at=now,
            reason_code=cmd.reason_code,
            outcome_code=cmd.outcome_code,
        )
        await uow.referrals.save(referral, expected_version=cmd.expected_version)
        await uow.commit()
    return referral
