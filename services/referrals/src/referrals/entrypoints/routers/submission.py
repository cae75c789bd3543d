"""Submitting a referral."""

from __future__ import annotations

import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi import status as http
from fastapi.responses import JSONResponse

from referrals.domain.model import DuplicateReferral, MissingDetail
from referrals.entrypoints.dependencies import Referrer, Settings, Uow, caller_of
from referrals.entrypoints.preconditions import check_idempotency_key, etag
from referrals.entrypoints.problems import PROBLEM_RESPONSES, duplicate, missing_detail, reused_idempotency_key
from referrals.entrypoints.schemas import ReferralCreate, ReferralOut
from referrals.service_layer.idempotency import Idempotency, IdempotencyKeyReused
from referrals.service_layer.submission import SubmitReferral, submit_referral

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)


@router.post(
    "/referrals",
    status_code=http.HTTP_201_CREATED,
    response_model=ReferralOut,
    summary="Submit a referral",
    responses={409: {"description": "The child already has an open referral at this service"}},
)
async def create(
    body: ReferralCreate,
    caller: Referrer,
    request: Request,
    uow: Uow,
    settings: Settings,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required: a retry with the same key and body returns the first response.",
        ),
    ] = None,
) -> JSONResponse:
    idempotency_key = check_idempotency_key(idempotency_key)
    request_hash = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()
    try:
        response = await submit_referral(
            SubmitReferral(
                caller=caller_of(caller),
                service_id=body.service_id,
                person=body.person(),
                urgency=body.urgency,
                primary_need=body.primary_need,
                secondary_need=body.secondary_need,
                referred_at=body.referred_at,
            ),
            uow,
            settings.child_ref_key.get_secret_value().encode(),
            idempotency=Idempotency(idempotency_key, request_hash),
            render=lambda r: ReferralOut.of(r).model_dump(mode="json"),
        )
    except MissingDetail as exc:
        raise missing_detail(exc) from exc
    except IdempotencyKeyReused as exc:
        raise reused_idempotency_key("body") from exc
    except DuplicateReferral as exc:
        raise duplicate(exc, caller, request) from exc
    payload = response.body
    location = str(request.url_for("get_referral", referral_id=payload["id"]))
    return JSONResponse(
        payload, status_code=response.status_code, headers={"ETag": etag(payload["version"]), "Location": location}
    )
