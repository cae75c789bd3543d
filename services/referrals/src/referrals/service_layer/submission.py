"""Submitting a referral."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from referrals.domain.child import PersonalDetails, child_reference
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.consent import RecordedVia
from referrals.domain.idempotency import StoredResponse
from referrals.domain.interim import WaitEstimate
from referrals.domain.model import (
    DuplicateReferral,
    MissingDetail,
    Referral,
    check_no_open_duplicate,
    check_urgency_offered,
)
from referrals.service_layer.callers import Caller
from referrals.service_layer.consent import GivenConsent, check_scope_known, record_first_consent
from referrals.service_layer.directory import find_service_with_estimate
from referrals.service_layer.idempotency import Idempotency, earlier_response, remember
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.conflicts import retried_on_conflict


@dataclass(frozen=True)
class SubmitReferral:
    caller: Caller
    service_id: str
    person: PersonalDetails
    consent: GivenConsent
    urgency: Urgency
    primary_need: NeedCode
    secondary_need: NeedCode | None
    referred_at: datetime | None = None


@retried_on_conflict
async def submit_referral(
    cmd: SubmitReferral,
    uow: UnitOfWork,
    child_ref_key: bytes,
    *,
    idempotency: Idempotency,
    render: Callable[[Referral, WaitEstimate | None], dict[str, Any]],
) -> StoredResponse:
    """Creates the referral and returns its response (``render``, given the service's predicted wait as waitlists
    last told it), stored under the Idempotency-Key; or the response stored under that key before."""
    now = datetime.now(UTC)
    async with uow:
        if stored := await earlier_response(uow, cmd.caller, idempotency):
            return stored
        service, estimate = await find_service_with_estimate(uow.directory, cmd.service_id, "service_id")
        check_urgency_offered(service, cmd.urgency)
        await check_scope_known(uow, cmd.consent.scope, "consent.")
        child_ref = child_reference(cmd.person.identifier, child_ref_key)
        open_referrals = await uow.referrals.open_for_child(child_ref)
        try:
            check_no_open_duplicate(open_referrals, service.id)
        except DuplicateReferral:
            # The open one may be this request's own first try, committed since the key was looked up.
            if stored := await earlier_response(uow, cmd.caller, idempotency):
                return stored
            raise
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
        try:
            await record_first_consent(
                uow,
                referral,
                cmd.consent,
                date_of_birth=cmd.person.date_of_birth,
                now=now,
                recorded_via=RecordedVia.API,
                recorded_by_org_id=cmd.caller.organisation_id,
            )
        except MissingDetail as exc:
            raise MissingDetail(f"consent.{exc.field}", exc.rule, str(exc)) from exc
        response = await remember(uow, cmd.caller, idempotency, 201, render(referral, estimate))
        await uow.commit()
    return response
