"""Consent use cases (issue 17): the consent a submission records, giving, changing and withdrawing consent later,
its history, and the scope check of onward sharing (hand-offs, re-referrals)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from referrals.domain.audit import AuditAction, AuditEntry
from referrals.domain.codes import WithdrawalReason
from referrals.domain.consent import (
    ConsentAction,
    ConsentGiver,
    ConsentRecord,
    ConsentRecordOf,
    ConsentScope,
    ConsentStatus,
    RecordedVia,
)
from referrals.domain.idempotency import StoredResponse
from referrals.domain.lifecycle import Actor, Status
from referrals.domain.model import MissingDetail, MoveDetails, Referral
from referrals.service_layer.callers import Caller, ConsentCaller, FamilyCaller
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.idempotency import Idempotency, earlier_response, remember
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.conflicts import retried_on_conflict

BEFORE_ACCEPTANCE = frozenset({Status.SUBMITTED, Status.ACKNOWLEDGED})
"""A withdrawal of consent in these statuses (or on hold from them) withdraws the referral too."""


@dataclass(frozen=True)
class GivenConsent:
    """The consent a referral is submitted with. ``scope`` None: the referral's own service."""

    given_by: ConsentGiver
    occurred_at: datetime
    scope: ConsentScope | None = None
    note: str | None = None


@dataclass(frozen=True)
class ConsentChange:
    """A give, change or withdrawal of consent. ``scope`` None: for give, the referral's own service; for change, the
    scope in force (a new giver only); a withdrawal has no scope."""

    referral_id: str
    given_by: ConsentGiver
    scope: ConsentScope | None = None
    note: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ConsentOutcome:
    referral: Referral
    consent: ConsentRecordOf
    recorded: ConsentRecord


async def check_scope_known(uow: UnitOfWork, scope: ConsentScope | None, prefix: str = "") -> None:
    """Every id of the scope is in the directory (a 422 naming the field otherwise)."""
    if scope is None:
        return
    for service_id in scope.service_ids:
        if await uow.directory.service(service_id, include_inactive=True) is None:
            raise MissingDetail(
                f"{prefix}scope_service_ids", "known_service", f"no service {service_id!r} in the directory"
            )
    for organisation_id in scope.organisation_ids:
        if await uow.directory.organisation(organisation_id) is None:
            raise MissingDetail(
                f"{prefix}scope_organisation_ids",
                "known_organisation",
                f"no organisation {organisation_id!r} in the directory",
            )


async def record_first_consent(
    uow: UnitOfWork,
    referral: Referral,
    given: GivenConsent,
    *,
    date_of_birth: date | None,
    now: datetime,
    recorded_via: RecordedVia,
    recorded_by_org_id: str,
    referral_version: int = 1,
) -> ConsentRecord:
    """Records consent version 1 (given) of a new referral, published right after its ``submitted`` (the
    referral event of ``referral_version``)."""
    record = first_consent(
        referral,
        given,
        date_of_birth=date_of_birth,
        now=now,
        recorded_via=recorded_via,
        recorded_by_org_id=recorded_by_org_id,
        referral_version=referral_version,
    )
    await uow.consents.add(referral, record)
    return record


def first_consent(
    referral: Referral,
    given: GivenConsent,
    *,
    date_of_birth: date | None,
    now: datetime,
    recorded_via: RecordedVia,
    recorded_by_org_id: str,
    referral_version: int = 1,
) -> ConsentRecord:
    """Consent version 1 of a new referral, checked (the 16-and-over rule of a young person): ``MissingDetail``."""
    return ConsentRecordOf(referral.id, referral.service_id).record(
        ConsentAction.GIVE,
        given_by=given.given_by,
        scope=given.scope,
        occurred_at=min(given.occurred_at, now),  # a caller's clock a little fast (the API allows for it)
        now=now,
        event_id=str(uuid.uuid4()),
        date_of_birth=date_of_birth,
        referral_open=True,
        recorded_via=recorded_via,
        recorded_by_org_id=recorded_by_org_id,
        note=given.note,
        referral_version=referral_version,
    )


async def copy_consent(uow: UnitOfWork, source: Referral, linked: Referral, *, now: datetime, recorded_by: str) -> None:
    """The referral a hand-off or re-referral opens rests on the consent in force of the one it continues."""
    history = await uow.consents.history(source.id)
    if not history:
        return
    current = history[-1]
    record = ConsentRecord(
        referral_id=linked.id,
        version=1,
        status=ConsentStatus.GIVEN,
        given_by=current.given_by,
        scope=current.scope,
        occurred_at=current.occurred_at,
        recorded_at=now,
        event_id=str(uuid.uuid4()),
        recorded_via=RecordedVia.API,
        recorded_by_org_id=recorded_by,
        note=current.note,
        referral_version=linked.version,
    )
    await uow.consents.add(linked, record)


async def consent_of(uow: UnitOfWork, referral: Referral) -> ConsentRecordOf:
    return ConsentRecordOf(referral.id, referral.service_id, await uow.consents.history(referral.id))


async def _party(referral_id: str, caller: ConsentCaller, uow: UnitOfWork, *, for_update: bool) -> Referral:
    """The referral, if the caller may see and record its consent: its referrer's referrer role, its receiver's
    receiver role, or the family through a link to the child."""
    referral = await uow.referrals.get(referral_id, for_update=for_update)
    if isinstance(caller, FamilyCaller):
        if referral is None or referral.child_ref != caller.child_ref:
            raise NotFound(referral_id)
        return referral
    if referral is None or not referral.seen_by(caller.organisation_id):
        raise NotFound(referral_id)
    if not referral.readable_by(caller.organisation_id, caller.role):
        raise NotYourReferral(f"the {caller.role} role of this organisation may not see or record this consent")
    return referral


@retried_on_conflict
async def _record(
    action: ConsentAction,
    cmd: ConsentChange,
    caller: ConsentCaller,
    uow: UnitOfWork,
    *,
    idempotency: Idempotency | None = None,
    render: Callable[[ConsentOutcome], dict[str, Any]] | None = None,
) -> ConsentOutcome | StoredResponse:
    now = datetime.now(UTC)
    family = isinstance(caller, FamilyCaller)
    async with uow:
        if (
            idempotency is not None
            and isinstance(caller, Caller)
            and (stored := await earlier_response(uow, caller, idempotency))
        ):
            return stored
        referral = await _party(cmd.referral_id, caller, uow, for_update=True)
        if action is not ConsentAction.WITHDRAW:
            await check_scope_known(uow, cmd.scope)
        consent = await consent_of(uow, referral)
        person = await uow.referrals.person(referral.id)
        recorded_by = None if isinstance(caller, FamilyCaller) else caller.organisation_id
        record = consent.record(
            action,
            given_by=cmd.given_by,
            scope=cmd.scope,
            occurred_at=cmd.occurred_at or now,
            now=now,
            event_id=str(uuid.uuid4()),
            date_of_birth=person.date_of_birth if person else None,
            referral_open=referral.is_open,
            recorded_via=RecordedVia.FAMILY_VIEW if family else RecordedVia.API,
            recorded_by_org_id=recorded_by,
            note=cmd.note,
            referral_version=referral.version,
        )
        await uow.consents.add(referral, record)
        if action is ConsentAction.WITHDRAW and _before_acceptance(referral):
            expected = referral.version
            occurred_at = max(record.occurred_at, referral.status_at or record.occurred_at)
            referral.move(
                Status.WITHDRAWN,
                actor=Actor.REFERRER,
                occurred_at=occurred_at,
                recorded_at=now,
                details=MoveDetails(reason_code=WithdrawalReason.CONSENT_WITHDRAWN.value),
                recorded_by=recorded_by or referral.referrer_org_id,
            )
            await uow.referrals.save(referral, expected_version=expected)
        outcome = ConsentOutcome(referral, consent, record)
        response = None
        if idempotency is not None and render is not None and isinstance(caller, Caller):
            response = await remember(uow, caller, idempotency, 201, render(outcome))
        await uow.commit()
    return response or outcome


async def record_consent(
    action: ConsentAction,
    cmd: ConsentChange,
    caller: Caller,
    uow: UnitOfWork,
    *,
    idempotency: Idempotency,
    render: Callable[[ConsentOutcome], dict[str, Any]],
) -> StoredResponse:
    """give, change or withdraw by API: the response (``render``) stored under the Idempotency-Key with the change,
    or the one stored under that key before."""
    done = await _record(action, cmd, caller, uow, idempotency=idempotency, render=render)
    assert isinstance(done, StoredResponse)
    return done


async def _outcome(action: ConsentAction, cmd: ConsentChange, caller: ConsentCaller, uow: UnitOfWork) -> ConsentOutcome:
    done = await _record(action, cmd, caller, uow)
    assert isinstance(done, ConsentOutcome)
    return done


def _before_acceptance(referral: Referral) -> bool:
    return referral.status in BEFORE_ACCEPTANCE or (
        referral.status is Status.ON_HOLD and referral.held_from in BEFORE_ACCEPTANCE
    )


async def give_consent(cmd: ConsentChange, caller: Caller, uow: UnitOfWork) -> ConsentOutcome:
    """Consent given (again, after a withdrawal, while the referral is open)."""
    return await _outcome(ConsentAction.GIVE, cmd, caller, uow)


async def change_consent(cmd: ConsentChange, caller: Caller, uow: UnitOfWork) -> ConsentOutcome:
    """A new scope or a new giver."""
    return await _outcome(ConsentAction.CHANGE, cmd, caller, uow)


async def withdraw_consent(cmd: ConsentChange, caller: ConsentCaller, uow: UnitOfWork) -> ConsentOutcome:
    """Consent withdrawn, by the referrer or receiver (API) or by the family (family view). Before acceptance the
    referral is withdrawn too, in the same transaction, with reason code ``consent_withdrawn`` (its event after the
    consent's); after acceptance it stays open and the receiving service decides."""
    return await _outcome(ConsentAction.WITHDRAW, cmd, caller, uow)


async def consent_history(referral_id: str, caller: Caller, uow: UnitOfWork) -> tuple[Referral, ConsentRecordOf]:
    """Every consent event of the referral, notes included (the family's words): an audited read."""
    async with uow:
        referral = await _party(referral_id, caller, uow, for_update=False)
        consent = await consent_of(uow, referral)
        await uow.audit_log.add(
            AuditEntry(
                at=datetime.now(UTC),
                subject=caller.subject,
                organisation_id=caller.organisation_id,
                role=caller.role,
                action=AuditAction.READ_CONSENT,
                referral_id=referral_id,
            )
        )
        await uow.commit()
    return referral, consent
