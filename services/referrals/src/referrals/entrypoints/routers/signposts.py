"""Support while waiting: recording that a family took up an interim offer the referral was signposted to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from referrals.domain.interim import SignpostNotFound
from referrals.entrypoints.dependencies import Party, Settings, Uow, caller_of
from referrals.entrypoints.problems import PROBLEM_RESPONSES, not_found, not_readable
from referrals.entrypoints.routers.reading import ReferralId
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, SignpostOut
from referrals.service_layer import interim as interim_cases
from referrals.service_layer.errors import NotFound, NotYourReferral
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)

OfferId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="The interim offer's directory id.")
]


@router.post(
    "/referrals/{referral_id}/signposts/{offer_id}/take-up",
    response_model=SignpostOut,
    summary="Record that an interim offer was taken up",
)
async def take_up(
    referral_id: ReferralId, offer_id: OfferId, caller: Party, uow: Uow, settings: Settings
) -> SignpostOut:
    """Record that the family took up support while waiting that the referral was signposted to (see `signposts`
    on the referral). For the referral's referrer and receiver; the family records it on their page. Publishes
    `uk.send.referral.signpost_taken_up.v1`. Recording it again changes nothing and answers the same."""
    try:
        taken = await interim_cases.take_up(
            referral_id, offer_id, caller_of(caller), uow, now=datetime.now(UTC), source=settings.event_source
        )
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except SignpostNotFound as exc:
        raise Problem(
            404, "Not found", "the referral was not signposted to this interim offer", kind="not-found"
        ) from exc
    offers = {o.id: o for o in await interim_cases.all_offers(uow)}
    return SignpostOut.of(taken, offers.get(offer_id))
