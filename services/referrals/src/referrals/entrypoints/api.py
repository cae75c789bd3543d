"""HTTP API of the referrals service (v1)."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi import status as http

from referrals.adapters.directory import Directory
from referrals.domain.model import IllegalMove, NotYourMove
from referrals.entrypoints.schemas import ReferralCreate, ReferralOut, StatusChange
from referrals.service_layer import services
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.auth import Principal, Role, TokenVerifier, principal_dependency, require_roles
from send_shared.web.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int:
    if not value:
        raise Problem(428, "Precondition required", "send If-Match with the referral's ETag", kind="if-match-required")
    try:
        return int(value.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise Problem(400, "Bad If-Match", "If-Match must be the ETag of the referral", kind="bad-if-match") from exc


def build_router(
    *, make_uow: Callable[[], UnitOfWork], verifier: TokenVerifier, directory: Directory, child_ref_key: bytes
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["referrals"])
    any_org = Annotated[Principal, Depends(principal_dependency(verifier))]
    referrer = Annotated[Principal, Depends(require_roles(verifier, Role.REFERRER))]

    @router.post(
        "/referrals", status_code=http.HTTP_201_CREATED, response_model=ReferralOut, summary="Submit a referral"
    )
    async def create(body: ReferralCreate, caller: referrer, response: Response, request: Request) -> ReferralOut:
        if body.child_identifier is None:
            raise Problem(
                422,
                "Validation failed",
                "give the child's NHS number or UPN",
                kind="validation",
                errors=[{"field": "nhs_number", "rule": "one_of_required", "message": "nhs_number or upn"}],
            )
        try:
            referral = await services.submit_referral(
                services.SubmitReferral(
                    referrer_org_id=caller.organisation_id,
                    service_id=body.service_id,
                    child_identifier=body.child_identifier,
                    urgency=body.urgency,
                    referred_at=body.referred_at,
                ),
                make_uow(),
                directory,
                child_ref_key,
            )
        except services.UnknownService as exc:
            raise Problem(
                422,
                "Validation failed",
                str(exc),
                kind="validation",
                errors=[{"field": "service_id", "rule": "known_service", "message": str(exc)}],
            ) from exc
        response.headers["ETag"] = etag(referral.version)
        response.headers["Location"] = str(request.url_for("get_referral", referral_id=referral.id))
        return ReferralOut.of(referral)

    @router.get("/referrals/{referral_id}", response_model=ReferralOut, name="get_referral", summary="One referral")
    async def get(referral_id: str, caller: any_org, response: Response) -> ReferralOut:
        try:
            referral = await services.get_referral(referral_id, caller.organisation_id, make_uow())
        except services.NotFound as exc:
            raise Problem(404, "Not found", "no such referral", kind="not-found") from exc
        response.headers["ETag"] = etag(referral.version)
        return ReferralOut.of(referral)

    @router.post(
        "/referrals/{referral_id}/status", response_model=ReferralOut, summary="Move a referral to a new status"
    )
    async def move(
        referral_id: str,
        body: StatusChange,
        caller: any_org,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> ReferralOut:
        expected = parse_if_match(if_match)
        try:
            referral = await services.move_referral(
                services.MoveReferral(
                    referral_id=referral_id,
                    caller_org_id=caller.organisation_id,
                    target=body.status,
                    expected_version=expected,
                    occurred_at=body.occurred_at,
                    reason_code=body.reason_code,
                    outcome_code=body.outcome_code,
                ),
                make_uow(),
            )
        except services.NotFound as exc:
            raise Problem(404, "Not found", "no such referral", kind="not-found") from exc
        except services.VersionMismatch as exc:
            raise Problem(
                412, "Precondition failed", str(exc), kind="stale-version", current_version=exc.current
            ) from exc
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
            raise Problem(403, "Forbidden", str(exc), kind="forbidden") from exc
        response.headers["ETag"] = etag(referral.version)
        return ReferralOut.of(referral)

    return router
