"""Moving a referral to a new status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from referrals.domain.consent import OutsideConsent
from referrals.domain.model import DuplicateReferral, IllegalMove, MissingDetail, MoveDetails, NotYourMove
from referrals.entrypoints.dependencies import Party, Settings, Uow, caller_of
from referrals.entrypoints.preconditions import etag, parse_if_match
from referrals.entrypoints.problems import PROBLEM_RESPONSES, duplicate, forbidden, missing_detail, not_found
from referrals.entrypoints.routers.reading import ReferralId
from referrals.entrypoints.schemas import ReferralOut, StatusChange
from referrals.service_layer.errors import NotFound, VersionMismatch
from referrals.service_layer.moves import MoveReferral, move_referral
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)


@router.post(
    "/referrals/{referral_id}/status",
    response_model=ReferralOut,
    summary="Move a referral to a new status",
    responses={
        409: {
            "description": "Illegal move: names the current status and the allowed moves; or a hand-off or "
            "re-referral consent does not allow (rule outside_consent_scope or consent_withdrawn)"
        },
        412: {"description": "If-Match is not the current version"},
        428: {"description": "If-Match missing"},
    },
)
async def move(
    referral_id: ReferralId,
    body: StatusChange,
    caller: Party,
    request: Request,
    response: Response,
    uow: Uow,
    settings: Settings,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='Required: the referral\'s ETag as you last read it, e.g. "3". Without it the answer is a '
            "428; if the referral changed since, a 412.",
        ),
    ] = None,
) -> ReferralOut:
    """Move the referral to one of its `allowed_moves`. The referrer withdraws (`withdrawn`); either side may
    mark a mistake (`entered_in_error`); every other move is the receiving service's. Each status needs its own
    details: `rejected` a rejection reason code, an explanation and a signposted service or a re-referral;
    `on_hold` a hold reason code and an expected resume date; `scheduled` the appointment; `handed_off` the
    service taking over (within the consent in force: see /consent); `completed` an outcome code. Accepting a
    referral whose service's predicted wait is long signposts it to interim offers (see `signposts`). Send the ETag you read as `If-Match`; the answer is the
    moved referral with its new ETag."""
    expected = parse_if_match(if_match)
    try:
        referral = await move_referral(
            MoveReferral(
                caller=caller_of(caller),
                referral_id=referral_id,
                target=body.status,
                expected_version=expected,
                occurred_at=body.occurred_at,
                details=MoveDetails(
                    reason_code=body.reason_code,
                    explanation=body.explanation,
                    signposted_service_id=body.signposted_service_id,
                    rereferral_service_id=body.rereferral_service_id,
                    target_service_id=body.target_service_id,
                    appointment_at=body.appointment_at,
                    expected_resume=body.expected_resume,
                    outcome_code=body.outcome_code,
                ),
                signpost_after_days=settings.signpost_wait_weeks * 7,
                event_source=settings.event_source,
            ),
            uow,
        )
    except NotFound as exc:
        raise not_found() from exc
    except VersionMismatch as exc:
        raise Problem(412, "Precondition failed", str(exc), kind="stale-version", current_version=exc.current) from exc
    except IllegalMove as exc:
        raise Problem(
            409,
            "Illegal move",
            str(exc),
            kind="illegal-move",
            current_status=exc.current.value,
            allowed_moves=exc.allowed,
        ) from exc
    except NotYourMove as exc:
        raise forbidden(str(exc)) from exc
    except DuplicateReferral as exc:
        raise duplicate(exc, caller, request) from exc
    except MissingDetail as exc:
        raise missing_detail(exc) from exc
    except OutsideConsent as exc:
        raise Problem(
            409,
            "Outside consent",
            str(exc),
            kind="outside-consent",
            errors=[{"field": exc.field, "rule": exc.rule, "message": str(exc)}],
        ) from exc
    response.headers["ETag"] = etag(referral.version)
    return ReferralOut.of(referral)
