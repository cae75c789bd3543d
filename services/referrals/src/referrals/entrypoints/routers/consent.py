"""Consent to share a referral (issue 17): its history, and giving, changing or withdrawing it."""

from __future__ import annotations

import hashlib

import orjson
from fastapi import APIRouter, Request
from fastapi import status as http
from fastapi.responses import JSONResponse

from referrals.domain.consent import ConsentAction, IllegalConsentMove
from referrals.domain.model import MissingDetail
from referrals.entrypoints.consent_schemas import ConsentActionIn, ConsentHistoryOut
from referrals.entrypoints.dependencies import Party, Uow, caller_of
from referrals.entrypoints.preconditions import IDEMPOTENCY_KEY, check_idempotency_key, idempotency_key_parameter
from referrals.entrypoints.problems import (
    PROBLEM_RESPONSES,
    invalid,
    missing_detail,
    not_found,
    not_readable,
    reused_idempotency_key,
)
from referrals.entrypoints.routers.reading import ReferralId
from referrals.service_layer import consent as consent_cases
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.idempotency import Idempotency, IdempotencyKeyReused
from send_shared.web.links import url_for
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["consent"], responses=PROBLEM_RESPONSES)


@router.get(
    "/referrals/{referral_id}/consent",
    response_model=ConsentHistoryOut,
    name="get_consent",
    summary="The referral's consent, every event",
)
async def history(referral_id: ReferralId, caller: Party, uow: Uow) -> ConsentHistoryOut:
    """Every consent event of the referral, oldest first (the last is in force): who gave, changed or withdrew
    consent (as a role), its scope (which services and organisations may receive the referral), the family's words,
    when, and who recorded it. For the referral's referrer and receiver, like the referral itself; every read is
    recorded in the audit log."""
    try:
        referral, consent = await consent_cases.consent_history(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    return ConsentHistoryOut.of(referral, consent)


@router.post(
    "/referrals/{referral_id}/consent",
    status_code=http.HTTP_201_CREATED,
    response_model=ConsentHistoryOut,
    summary="Give, change or withdraw consent",
    responses={
        409: {
            "description": "A consent move that does not apply (rule allowed_consent_move, or referral_open for "
            "consent given again on a closed referral): names the consent status and the allowed actions",
            "content": {"application/problem+json": {}},
        }
    },
    openapi_extra={"parameters": [idempotency_key_parameter("body")]},
)
async def record(
    referral_id: ReferralId, body: ConsentActionIn, caller: Party, request: Request, uow: Uow
) -> JSONResponse:
    """Record a consent event the family made: `give` (again, after a withdrawal, while the referral is open),
    `change` (a new scope or a new giver) or `withdraw`. The referral's referrer and receiver may record it.

    A withdrawal stops onward sharing at once: no hand-off or re-referral follows (409, rule consent_withdrawn).
    Before the service accepts the referral (submitted, acknowledged, or on hold from them) it withdraws the
    referral too, with reason code `consent_withdrawn`; after acceptance the referral stays open and the receiving
    service decides. Each consent event is published (`uk.send.referral.consent.<given|changed|withdrawn>.v1`) with
    codes only; the note never leaves this service. The answer (201) is the consent history."""
    idempotency_key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    if body.action is ConsentAction.WITHDRAW:
        for name in ("scope_service_ids", "scope_organisation_ids"):
            if getattr(body, name) is not None:
                raise invalid(name, "not_with_withdraw", "a withdrawal has no scope: nothing may receive the referral")
    signed = {"referral_id": referral_id, **body.model_dump(mode="json")}
    request_hash = hashlib.sha256(orjson.dumps(signed, option=orjson.OPT_SORT_KEYS)).hexdigest()
    try:
        response = await consent_cases.record_consent(
            body.action,
            body.change(referral_id),
            caller_of(caller),
            uow,
            idempotency=Idempotency(idempotency_key, request_hash),
            render=lambda done: ConsentHistoryOut.of(done.referral, done.consent).model_dump(mode="json"),
        )
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except IllegalConsentMove as exc:
        raise Problem(
            409,
            "Consent move not allowed",
            str(exc),
            kind="illegal-consent-move",
            consent_status=exc.current.value if exc.current else None,
            allowed_actions=exc.allowed,
            errors=[{"field": "action", "rule": exc.rule, "message": str(exc)}],
        ) from exc
    except MissingDetail as exc:
        raise missing_detail(exc) from exc
    except IdempotencyKeyReused as exc:
        raise reused_idempotency_key("body") from exc
    location = url_for(request, "get_consent", referral_id=referral_id)
    return JSONResponse(response.body, status_code=response.status_code, headers={"Location": location})
