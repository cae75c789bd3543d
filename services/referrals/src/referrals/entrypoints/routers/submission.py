"""Submitting a referral."""

from __future__ import annotations

import hashlib

import orjson
from fastapi import APIRouter, Request
from fastapi import status as http
from fastapi.responses import JSONResponse

from referrals.domain.model import DuplicateReferral, MissingDetail
from referrals.entrypoints.dependencies import Referrer, Settings, Uow, caller_of
from referrals.entrypoints.preconditions import IDEMPOTENCY_KEY, check_idempotency_key, etag, idempotency_key_parameter
from referrals.entrypoints.problems import PROBLEM_RESPONSES, duplicate, missing_detail, reused_idempotency_key
from referrals.entrypoints.schemas import ReferralCreate, ReferralOut
from referrals.service_layer.idempotency import Idempotency, IdempotencyKeyReused
from referrals.service_layer.submission import SubmitReferral, submit_referral
from send_shared.web.links import url_for

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)


@router.post(
    "/referrals",
    status_code=http.HTTP_201_CREATED,
    response_model=ReferralOut,
    summary="Submit a referral",
    responses={409: {"description": "The child already has an open referral at this service"}},
    openapi_extra={"parameters": [idempotency_key_parameter("body")]},
)
async def create(
    body: ReferralCreate,
    caller: Referrer,
    request: Request,
    uow: Uow,
    settings: Settings,
) -> JSONResponse:
    """A school (role `referrer`) refers a child to a service in the directory. The answer is the new referral
    (201) with its `Location` and `ETag`. The child's details and the reason are kept in this service and seen
    only by the referrer and the receiving service's organisation; other services get the referral without them.

    If the child already has an open referral at that service, the answer is a 409: with a link to it if you
    may read it, or else the service to contact. The answer carries the service's predicted wait
    (`wait_estimate`: median and 90th percentile to support starting, or "not enough data yet")."""
    idempotency_key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    request_hash = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()
    try:
        response = await submit_referral(
            SubmitReferral(
                caller=caller_of(caller),
                service_id=body.service_id,
                person=body.person(),
                consent=body.consent.given(),
                urgency=body.urgency,
                primary_need=body.primary_need,
                secondary_need=body.secondary_need,
                referred_at=body.referred_at,
            ),
            uow,
            settings.child_ref_key.get_secret_value().encode(),
            idempotency=Idempotency(idempotency_key, request_hash),
            render=lambda r, estimate: ReferralOut.of(r, estimate=estimate, with_estimate=True).model_dump(mode="json"),
        )
    except MissingDetail as exc:
        raise missing_detail(exc) from exc
    except IdempotencyKeyReused as exc:
        raise reused_idempotency_key("body") from exc
    except DuplicateReferral as exc:
        raise duplicate(exc, caller, request) from exc
    payload = response.body
    location = url_for(request, "get_referral", referral_id=payload["id"])
    return JSONResponse(
        payload, status_code=response.status_code, headers={"ETag": etag(payload["version"]), "Location": location}
    )
