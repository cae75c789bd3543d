"""Use cases of the referrals service. Each runs in one unit of work (one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from referrals.adapters.directory import SqlDirectory
from referrals.adapters.repository import ListFilter, StoredResponse
from referrals.domain.child import PersonalDetails, child_reference
from referrals.domain.directory import Service
from referrals.domain.lifecycle import Actor, Status
from referrals.domain.model import DomainError, MissingDetail, MoveDetails, NotYourMove, Referral
from referrals.service_layer.unit_of_work import UnitOfWork


class NotFound(DomainError):
    """No such referral, or not one the caller may see (the two are indistinguishable on purpose)."""


class NotYourReferral(DomainError):
    """The caller's organisation is a party to the referral, but the caller's role may not read it: only the
    referring organisation's referrer role and the receiving organisation's receiver role see personal details."""


class UnknownService(MissingDetail):
    def __init__(self, field: str, service_id: str) -> None:
        super().__init__(field, "known_service", f"no service {service_id!r} in the directory")


class VersionMismatch(DomainError):
    def __init__(self, current: int) -> None:
        super().__init__(f"the referral is at version {current}")
        self.current = current


class DuplicateReferral(DomainError):
    def __init__(self, existing: Referral) -> None:
        super().__init__("this child already has an open referral at this service")
        self.existing = existing


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request body."""


@dataclass(frozen=True)
class Caller:
    organisation_id: str
    role: str
    subject: str


@dataclass(frozen=True)
class SubmitReferral:
    caller: Caller
    service_id: str
    person: PersonalDetails
    urgency: str
    primary_need: str
    secondary_need: str | None
    referred_at: datetime | None = None


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


@dataclass(frozen=True)
class MoveReferral:
    caller: Caller
    referral_id: str
    target: Status
    expected_version: int
    details: MoveDetails
    occurred_at: datetime | None = None


async def find_service(directory: SqlDirectory, service_id: str, field: str) -> Service:
    service = await directory.service(service_id)
    if service is None:
        raise UnknownService(field, service_id)
    return service


async def submit_referral(
    cmd: SubmitReferral,
    uow: UnitOfWork,
    child_ref_key: bytes,
    *,
    idempotency: Idempotency,
    render: Callable[[Referral], dict[str, Any]],
) -> tuple[int, dict[str, Any]]:
    """Creates the referral, or replays the response stored under the same Idempotency-Key."""
    now = datetime.now(UTC)
    async with uow:
        stored = await uow.referrals.stored_response(cmd.caller.organisation_id, idempotency.key)
        if stored is not None:
            if stored.request_hash != idempotency.request_hash:
                raise IdempotencyKeyReused(idempotency.key)
            return stored.status_code, stored.body
        service = await find_service(uow.directory, cmd.service_id, "service_id")
        if cmd.urgency not in service.urgencies:
            raise MissingDetail("urgency", "offered_by_service", f"{service.name} takes {', '.join(service.urgencies)}")
        child_ref = child_reference(cmd.person.identifier, child_ref_key)
        open_referrals = await uow.referrals.open_for_child(child_ref)
        for other in open_referrals:
            if other.service_id == service.id:
                raise DuplicateReferral(other)
        referral = Referral.submit(
            id=str(uuid.uuid4()),
            child_ref=child_ref,
            referrer_org_id=cmd.caller.organisation_id,
            service_id=service.id,
            receiving_org_id=service.organisation_id,
            urgency=cmd.urgency,
            referred_at=cmd.referred_at or now,
            recorded_at=now,
            primary_need=cmd.primary_need,
            secondary_need=cmd.secondary_need,
            is_ehc=service.is_ehc,
            parallel_referral_ids=tuple(sorted(o.id for o in open_referrals)),
        )
        await uow.referrals.add(referral, cmd.person)
        body = render(referral)
        await uow.referrals.store_response(
            cmd.caller.organisation_id, idempotency.key, StoredResponse(idempotency.request_hash, 201, body)
        )
        await uow.commit()
    return 201, body


async def get_referral(
    referral_id: str, caller: Caller, uow: UnitOfWork
) -> tuple[Referral, PersonalDetails | None, list[Referral]]:
    """The referral, the child's details (read audited) and the child's other open referrals."""
    async with uow:
        referral = await _readable(referral_id, caller, uow)
        person = await uow.referrals.person(referral_id)
        parallel = [r for r in await uow.referrals.open_for_child(referral.child_ref) if r.id != referral.id]
        await uow.referrals.audit(
            subject=caller.subject,
            organisation_id=caller.organisation_id,
            role=caller.role,
            action="read_referral",
            referral_id=referral_id,
        )
        await uow.commit()
    return referral, person, parallel


async def list_referrals(
    f: ListFilter, uow: UnitOfWork, *, limit: int, cursor: str | None
) -> tuple[list[Referral], str | None]:
    async with uow:
        return await uow.referrals.visible(f, limit=limit, cursor=cursor)


async def referral_history(referral_id: str, caller: Caller, uow: UnitOfWork) -> Sequence[Any]:
    async with uow:
        await _readable(referral_id, caller, uow)
        return await uow.referrals.history(referral_id)


async def _readable(referral_id: str, caller: Caller, uow: UnitOfWork) -> Referral:
    referral = await uow.referrals.get(referral_id)
    if referral is None or not referral.seen_by(caller.organisation_id):
        raise NotFound(referral_id)
    if not referral.readable_by(caller.organisation_id, caller.role):
        raise NotYourReferral(f"the {caller.role} role of this organisation may not read this referral")
    return referral


def _actor(referral: Referral, caller: Caller, target: Status) -> Actor:
    if caller.role == "referrer" and caller.organisation_id == referral.referrer_org_id:
        return Actor.REFERRER
    if caller.role == "receiver" and caller.organisation_id == referral.receiving_org_id:
        return Actor.RECEIVER
    raise NotYourMove(Actor.REFERRER if caller.role == "referrer" else Actor.RECEIVER, target)


async def move_referral(cmd: MoveReferral, uow: UnitOfWork) -> Referral:
    now = datetime.now(UTC)
    occurred_at = cmd.occurred_at or now
    d = cmd.details
    if occurred_at > now:
        raise MissingDetail("occurred_at", "not_in_future", "occurred_at must not be in the future")
    onward_id = d.target_service_id if cmd.target is Status.HANDED_OFF else d.rereferral_service_id
    onward_field = "target_service_id" if cmd.target is Status.HANDED_OFF else "rereferral_service_id"
    async with uow:
        if d.signposted_service_id:
            await find_service(uow.directory, d.signposted_service_id, "signposted_service_id")
        onward = await find_service(uow.directory, onward_id, onward_field) if onward_id else None
        referral = await uow.referrals.get(cmd.referral_id, for_update=True)
        if referral is None or not referral.seen_by(cmd.caller.organisation_id):
            raise NotFound(cmd.referral_id)
        actor = _actor(referral, cmd.caller, cmd.target)
        if referral.version != cmd.expected_version:
            raise VersionMismatch(referral.version)
        linked: Referral | None = None
        if onward is not None and cmd.target in (Status.HANDED_OFF, Status.REJECTED):
            if onward.id == referral.service_id:
                raise MissingDetail(onward_field, "different_service", "the onward service must be another service")
            for other in await uow.referrals.open_for_child(referral.child_ref):
                if other.service_id == onward.id:
                    raise DuplicateReferral(other)
            linked = referral.linked_copy(
                id=str(uuid.uuid4()),
                service_id=onward.id,
                receiving_org_id=onward.organisation_id,
                is_ehc=onward.is_ehc,
                at=occurred_at,
                recorded_at=now,
                recorded_by=cmd.caller.organisation_id,
            )
        referral.move(
            cmd.target,
            actor=actor,
            occurred_at=occurred_at,
            recorded_at=now,
            details=d,
            linked_referral_id=linked.id if linked else None,
            recorded_by=cmd.caller.organisation_id,
        )
        await uow.referrals.save(referral, expected_version=cmd.expected_version)
        if linked is not None:
            person = await uow.referrals.person(referral.id)
            if person is None:
                raise NotFound(referral.id)
            await uow.referrals.add(linked, person)
        await uow.commit()
    return referral
