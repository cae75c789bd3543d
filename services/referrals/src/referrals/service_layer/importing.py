"""Import of an existing waiting list: all rows or none, each with its original business times."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from referrals.domain.child import PersonalDetails, child_reference
from referrals.domain.codes import HoldReason, NeedCode, Urgency
from referrals.domain.consent import RecordedVia
from referrals.domain.errors import DomainError
from referrals.domain.idempotency import StoredResponse
from referrals.domain.lifecycle import Actor, Status, actor_may_move
from referrals.domain.model import (
    DuplicateReferral,
    MissingDetail,
    MoveDetails,
    Referral,
    check_no_open_duplicate,
    check_urgency_offered,
)
from referrals.service_layer.callers import Caller
from referrals.service_layer.consent import GivenConsent, check_scope_known, first_consent, record_first_consent
from referrals.service_layer.idempotency import Idempotency, earlier_response, remember
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.conflicts import retried_on_conflict


@dataclass(frozen=True)
class ImportedReferral:
    """One validated row, as the use case needs it."""

    line: int
    service_id: str
    referrer_org_id: str | None
    person: PersonalDetails
    consent: GivenConsent
    primary_need: NeedCode
    secondary_need: NeedCode | None
    urgency: Urgency
    referred_at: datetime
    status: Status
    accepted_at: datetime | None
    status_at: datetime | None
    appointment_at: datetime | None
    hold_reason: HoldReason | None
    expected_resume: date | None


@dataclass(frozen=True)
class ImportProblem:
    line: int
    column: str
    rule: str
    message: str


class ImportRejected(DomainError):
    def __init__(self, problems: list[ImportProblem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@retried_on_conflict
async def import_referrals(
    rows: Sequence[ImportedReferral],
    caller: Caller,
    uow: UnitOfWork,
    child_ref_key: bytes,
    *,
    idempotency: Idempotency,
    earlier_problems: Sequence[ImportProblem] = (),
) -> StoredResponse:
    """Checks every row against the directory and the open referrals, adding to the problems the
    file's own validation found; imports only if there are none at all."""
    now = datetime.now(UTC)
    problems: list[ImportProblem] = list(earlier_problems)
    async with uow:
        if stored := await earlier_response(uow, caller, idempotency):
            return stored
        open_by_child: dict[str, list[Referral]] = {}
        created: list[Referral] = []
        for row in rows:
            referral = await _build(row, caller, uow, child_ref_key, open_by_child, problems, now)
            if referral is not None:
                created.append(referral)
        if problems:
            raise ImportRejected(sorted(problems, key=lambda p: (p.line, p.column)))
        for row, referral in zip(rows, created, strict=True):
            await uow.referrals.add(referral, row.person)
            # Consent version 1 is published after the referral's first event (submitted), as a submission's.
            await record_first_consent(
                uow,
                referral,
                row.consent,
                date_of_birth=row.person.date_of_birth,
                now=now,
                recorded_via=RecordedVia.IMPORT,
                recorded_by_org_id=caller.organisation_id,
            )
        body = {"imported": len(created), "referral_ids": [r.id for r in created]}
        response = await remember(uow, caller, idempotency, 201, body)
        await uow.commit()
    return response


async def _build(
    row: ImportedReferral,
    caller: Caller,
    uow: UnitOfWork,
    child_ref_key: bytes,
    open_by_child: dict[str, list[Referral]],
    problems: list[ImportProblem],
    now: datetime,
) -> Referral | None:
    def problem(column: str, rule: str, message: str) -> None:
        problems.append(ImportProblem(row.line, column, rule, message))

    service = await uow.directory.service(row.service_id)
    if service is None:
        problem("service_id", "known_service", f"no service {row.service_id!r} in the directory")
        return None
    if caller.role == Actor.REFERRER.value:
        actor = Actor.REFERRER
        if row.referrer_org_id not in (None, caller.organisation_id):
            problem("referrer_org_id", "own_organisation", "a referrer imports its own referrals only")
            return None
        referrer = caller.organisation_id
    elif caller.role == Actor.RECEIVER.value:
        actor = Actor.RECEIVER
        if service.organisation_id != caller.organisation_id:
            problem("service_id", "own_service", "a receiver imports waiting lists of its own services only")
            return None
        if row.referrer_org_id is None or await uow.directory.organisation(row.referrer_org_id) is None:
            problem("referrer_org_id", "known_organisation", "give the referring organisation's id")
            return None
        referrer = row.referrer_org_id
    else:
        problem("", "role_may_import", f"the {caller.role} role imports nothing")
        return None
    # The same rule as a live move: an import records only the moves the caller's role may make. A school
    # cannot import a local authority's "accepted"; the receiver imports those from its own waiting list.
    path = _path_to(row)
    for target, _, _ in path:
        if not actor_may_move(actor, target):
            problem(
                "status",
                "role_may_move",
                f"a {actor.value} may not record the move to {target.value}; "
                f"the receiving service imports its own waiting list",
            )
            return None
    try:
        check_urgency_offered(service, row.urgency)
    except MissingDetail as exc:
        problem(exc.field, exc.rule, str(exc))
        return None
    child_ref = child_reference(row.person.identifier, child_ref_key)
    if child_ref not in open_by_child:
        open_by_child[child_ref] = await uow.referrals.open_for_child(child_ref)
    siblings = open_by_child[child_ref]
    try:
        check_no_open_duplicate(siblings, service.id)
    except DuplicateReferral as exc:
        problem("nhs_number" if row.person.nhs_number else "upn", "no_open_duplicate", str(exc))
        return None
    referral = Referral.submit(
        id=str(uuid.uuid4()),
        child_ref=child_ref,
        referrer_org_id=referrer,
        service_id=service.id,
        receiving_org_id=service.organisation_id,
        urgency=row.urgency,
        referred_at=row.referred_at,
        recorded_at=now,
        primary_need=row.primary_need,
        secondary_need=row.secondary_need,
        is_ehc=service.is_ehc,
        parallel_referral_ids=tuple(sorted(r.id for r in siblings)),
        recorded_by=caller.organisation_id,
    )
    try:
        for target, at, details in path:
            referral.move(
                target,
                actor=actor,
                occurred_at=at,
                recorded_at=now,
                details=details,
                recorded_by=caller.organisation_id,
            )
    except DomainError as exc:
        problem(getattr(exc, "field", "status"), getattr(exc, "rule", "legal_move"), str(exc))
        return None
    try:
        await check_scope_known(uow, row.consent.scope, "consent_")
        first_consent(
            referral,
            row.consent,
            date_of_birth=row.person.date_of_birth,
            now=now,
            recorded_via=RecordedVia.IMPORT,
            recorded_by_org_id=caller.organisation_id,
        )
    except MissingDetail as exc:
        problem(exc.field if exc.field.startswith("consent_") else f"consent_{exc.field}", exc.rule, str(exc))
        return None
    siblings.append(referral)
    return referral


def _path_to(row: ImportedReferral) -> list[tuple[Status, datetime, MoveDetails]]:
    """The moves that bring a submitted referral to the row's status, at the row's times."""
    if row.status is Status.SUBMITTED:
        return []
    if row.status is Status.ACKNOWLEDGED:
        assert row.status_at is not None
        return [(Status.ACKNOWLEDGED, row.status_at, MoveDetails())]
    assert row.accepted_at is not None
    path = [(Status.ACCEPTED, row.accepted_at, MoveDetails())]
    if row.status is Status.SCHEDULED:
        assert row.status_at is not None
        path.append((Status.SCHEDULED, row.status_at, MoveDetails(appointment_at=row.appointment_at)))
    elif row.status is Status.ON_HOLD:
        assert row.status_at is not None
        details = MoveDetails(reason_code=row.hold_reason, expected_resume=row.expected_resume)
        path.append((Status.ON_HOLD, row.status_at, details))
    return path
