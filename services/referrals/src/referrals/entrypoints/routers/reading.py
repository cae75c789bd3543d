"""Reading referrals: the list an organisation sees, one referral, its history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from referrals.domain.codes import Urgency
from referrals.domain.lifecycle import Status
from referrals.domain.listing import ListFilter
from referrals.entrypoints.dependencies import Party, Uow, caller_of
from referrals.entrypoints.preconditions import etag
from referrals.entrypoints.problems import PROBLEM_RESPONSES, invalid, not_found, not_readable
from referrals.entrypoints.schemas import (
    IDENTIFIER_PATTERN,
    REFERRAL_ID_PATTERN,
    FilterInstant,
    HistoryEntry,
    ReferralOut,
    ReferralPage,
)
from referrals.service_layer import reading as reading_cases
from referrals.service_layer.errors import NotFound, NotYourReferral

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)

ReferralId = Annotated[
    str, Path(min_length=36, max_length=36, pattern=REFERRAL_ID_PATTERN, description="A referral id (UUID).")
]


@router.get("/referrals", response_model=ReferralPage, summary="Referrals your organisation sent or receives")
async def list_(
    caller: Party,
    uow: Uow,
    status: Status | None = None,
    service_id: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER_PATTERN)] = None,
    urgency: Urgency | None = None,
    referred_from: FilterInstant | None = None,
    referred_to: FilterInstant | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReferralPage:
    try:
        found, next_cursor = await reading_cases.list_referrals(
            ListFilter(
                organisation_id=caller.organisation_id,
                role=caller.role.value,
                status=status,
                service_id=service_id,
                urgency=urgency,
                referred_from=referred_from,
                referred_to=referred_to,
            ),
            uow,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise invalid("cursor", "issued_cursor", str(exc)) from exc
    return ReferralPage(items=[ReferralOut.of(r) for r in found], next_cursor=next_cursor)


@router.get("/referrals/{referral_id}", response_model=ReferralOut, name="get_referral", summary="One referral")
async def get(referral_id: ReferralId, caller: Party, uow: Uow, response: Response) -> ReferralOut:
    try:
        referral, person, parallel = await reading_cases.get_referral(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    response.headers["ETag"] = etag(referral.version)
    return ReferralOut.of(referral, person, parallel, viewer=(caller.organisation_id, caller.role.value))


@router.get("/referrals/{referral_id}/history", response_model=list[HistoryEntry], summary="Every change, in order")
async def history(referral_id: ReferralId, caller: Party, uow: Uow) -> list[HistoryEntry]:
    try:
        records = await reading_cases.referral_history(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    return [HistoryEntry.of(record) for record in records]
