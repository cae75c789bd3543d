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
    SignpostOut,
)
from referrals.service_layer import interim as interim_cases
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
    status: Annotated[Status | None, Query(description="Only referrals in this status.")] = None,
    service_id: Annotated[
        str | None,
        Query(max_length=64, pattern=IDENTIFIER_PATTERN, description="Only referrals to this service (directory id)."),
    ] = None,
    urgency: Annotated[Urgency | None, Query(description="Only referrals of this urgency.")] = None,
    referred_from: Annotated[
        FilterInstant | None,
        Query(description="Only referrals referred at or after this time (ISO 8601 with a time zone)."),
    ] = None,
    referred_to: Annotated[
        FilterInstant | None,
        Query(description="Only referrals referred at or before this time (ISO 8601 with a time zone)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="The most referrals on one page, 1 to 200.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="The `next_cursor` of the page before; omit for the first page.")
    ] = None,
) -> ReferralPage:
    """The referrals your organisation sent (role `referrer`) or its services receive (role `receiver`),
    newest first, a page at a time, without the child's details. Filters combine; follow `next_cursor` for the
    next page."""
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
    """One referral, with the child's details, the reason and the consent in force for its referrer and its
    receiver, and the child's other open referrals. The `ETag` header is its version: send it as `If-Match` to move it. Every
    read is recorded in the audit log. It also carries the service's predicted wait (`wait_estimate`) and the support
    while waiting the referral was signposted to (`signposts`; record a take-up with
    POST /v1/referrals/{referral_id}/signposts/{offer_id}/take-up)."""
    try:
        referral, person, parallel, consent = await reading_cases.get_referral(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    estimate, signposts = await interim_cases.waiting_support(referral, uow)
    response.headers["ETag"] = etag(referral.version)
    return ReferralOut.of(
        referral,
        person,
        parallel,
        viewer=(caller.organisation_id, caller.role.value),
        consent=consent,
        estimate=estimate,
        with_estimate=True,
        signposts=[SignpostOut.of(s, offer) for s, offer in signposts],
    )


@router.get("/referrals/{referral_id}/history", response_model=list[HistoryEntry], summary="Every change, in order")
async def history(referral_id: ReferralId, caller: Party, uow: Uow) -> list[HistoryEntry]:
    """Every change of the referral, oldest first, from its submission on: the status, who recorded it,
    when it happened and the codes it carried. For its referrer and its receiver."""
    try:
        records = await reading_cases.referral_history(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    return [HistoryEntry.of(record) for record in records]
