"""HTTP API of the referrals service (v1)."""

import hashlib
import re
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi import status as http
from fastapi.responses import JSONResponse

from referrals.adapters.repository import ListFilter
from referrals.domain.child import Consent, PersonalDetails
from referrals.domain.codes import Urgency
from referrals.domain.lifecycle import Status
from referrals.domain.model import IllegalMove, MissingDetail, MoveDetails, NotYourMove
from referrals.entrypoints import csv_import
from referrals.entrypoints.schemas import (
    IDENTIFIER_PATTERN,
    REFERRAL_ID_PATTERN,
    FilterInstant,
    HistoryEntry,
    ReferralCreate,
    ReferralOut,
    ReferralPage,
    StatusChange,
)
from referrals.service_layer import importing, services
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.auth import OrganisationLookup, Principal, Role, TokenVerifier, require_known_roles
from send_shared.web.problems import Problem

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in {
        401: "No, expired or forged bearer token",
        403: "The caller's role may not do this, or its organisation is not in the directory",
        404: "No such referral, or not one the caller's organisation sent or receives",
        422: "Invalid request: `errors` names each field and rule",
    }.items()
}


def etag(version: int) -> str:
    return f'"{version}"'


_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')
_VERSION = re.compile(r"[1-9][0-9]{0,8}")


def parse_if_match(value: str | None) -> int:
    """The version If-Match names. RFC 9110 (13.1.1) compares If-Match strongly: a weak tag (``W/"3"``) never
    matches, so it is a 412; a list of tags, ``*`` or anything that is not an entity tag is a 400."""
    if not value or not value.strip():
        raise Problem(428, "Precondition required", "send If-Match with the referral's ETag", kind="if-match-required")
    bad = Problem(400, "Bad If-Match", 'If-Match must be the one ETag of the referral, e.g. "3"', kind="bad-if-match")
    tag = _ENTITY_TAG.fullmatch(value.strip())
    if tag is None:
        raise bad
    weak, opaque = tag.groups()
    if weak:
        raise Problem(
            412,
            "Precondition failed",
            "If-Match uses strong comparison: a weak ETag never matches; send the referral's ETag as given",
            kind="weak-etag",
        )
    if not _VERSION.fullmatch(opaque):
        # A strong tag this API never issued cannot match the current one.
        raise Problem(412, "Precondition failed", "If-Match is not an ETag of this referral", kind="stale-version")
    return int(opaque)


_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_idempotency_key(value: str | None) -> str:
    if not value or len(value) > 255:
        raise invalid("Idempotency-Key", "required", "send an Idempotency-Key header of 1 to 255 characters")
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise invalid("Idempotency-Key", "visible_ascii", "an Idempotency-Key is visible ASCII characters only")
    return value


def invalid(field: str, rule: str, message: str) -> Problem:
    return Problem(
        422,
        "Validation failed",
        message,
        kind="validation",
        errors=[{"field": field, "rule": rule, "message": message}],
    )


def duplicate(exc: services.DuplicateReferral, viewer: Principal, request: Request) -> Problem:
    """A link to the open referral for whoever may read it (its referrer's referrer role, its receiver's
    receiver role); anyone else learns only that one exists at the service and what to do, never its id
    (which would tell who referred the child, and when)."""
    existing = exc.existing
    if existing.readable_by(viewer.organisation_id, viewer.role.value):
        link = str(request.url_for("get_referral", referral_id=existing.id))
        return Problem(409, "Duplicate referral", str(exc), kind="duplicate-referral", existing_referral=link)
    return Problem(
        409,
        "Duplicate referral",
        "this child already has an open referral at this service, made by another organisation: contact the "
        "service to share what you know rather than referring again",
        kind="duplicate-referral",
        service_id=existing.service_id,
    )


def not_found() -> Problem:
    return Problem(404, "Not found", "no such referral", kind="not-found")


def not_readable(exc: services.NotYourReferral) -> Problem:
    return Problem(403, "Forbidden", str(exc), kind="forbidden")


def caller_of(principal: Principal) -> services.Caller:
    return services.Caller(principal.organisation_id, principal.role.value, principal.subject)


def directory_member(make_uow: Callable[[], UnitOfWork]) -> OrganisationLookup:
    async def is_known(organisation_id: str) -> bool:
        async with make_uow() as uow:
            return await uow.directory.organisation(organisation_id) is not None

    return is_known


def known_organisation(verifier: TokenVerifier, make_uow: Callable[[], UnitOfWork], *roles: Role) -> Any:
    """A dependency: the caller has one of the roles and its organisation is in the directory (403 otherwise)."""
    return require_known_roles(verifier, directory_member(make_uow), *roles)


ReferralId = Annotated[
    str, Path(min_length=36, max_length=36, pattern=REFERRAL_ID_PATTERN, description="A referral id (UUID).")
]


def build_router(*, make_uow: Callable[[], UnitOfWork], verifier: TokenVerifier, child_ref_key: bytes) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)
    # Only these two roles ever read or change a referral, and only for an organisation in the directory; which
    # referral each may read is the domain's rule (Referral.readable_by).
    party = Annotated[Principal, Depends(known_organisation(verifier, make_uow, Role.REFERRER, Role.RECEIVER))]
    referrer = Annotated[Principal, Depends(known_organisation(verifier, make_uow, Role.REFERRER))]

    @router.post(
        "/referrals",
        status_code=http.HTTP_201_CREATED,
        response_model=ReferralOut,
        summary="Submit a referral",
        responses={409: {"description": "The child already has an open referral at this service"}},
    )
    async def create(
        body: ReferralCreate,
        caller: referrer,
        request: Request,
        idempotency_key: Annotated[
            str | None, Header(description="Required: a retry with the same key and body returns the first response.")
        ] = None,
    ) -> JSONResponse:
        idempotency_key = check_idempotency_key(idempotency_key)
        request_hash = hashlib.sha256(
            orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        try:
            status_code, payload = await services.submit_referral(
                services.SubmitReferral(
                    caller=caller_of(caller),
                    service_id=body.service_id,
                    person=body.person(),
                    urgency=body.urgency.value,
                    primary_need=body.primary_need.value,
                    secondary_need=body.secondary_need.value if body.secondary_need else None,
                    referred_at=body.referred_at,
                ),
                make_uow(),
                child_ref_key,
                idempotency=services.Idempotency(idempotency_key, request_hash),
                render=lambda r: ReferralOut.of(r).model_dump(mode="json"),
            )
        except MissingDetail as exc:
            raise invalid(exc.field, exc.rule, str(exc)) from exc
        except services.IdempotencyKeyReused as exc:
            raise invalid(
                "Idempotency-Key", "same_body_for_same_key", "this key was used with a different body"
            ) from exc
        except services.DuplicateReferral as exc:
            raise duplicate(exc, caller, request) from exc
        location = str(request.url_for("get_referral", referral_id=payload["id"]))
        return JSONResponse(
            payload, status_code=status_code, headers={"ETag": etag(payload["version"]), "Location": location}
        )

    @router.get("/referrals", response_model=ReferralPage, summary="Referrals your organisation sent or receives")
    async def list_(
        caller: party,
        status: Status | None = None,
        service_id: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER_PATTERN)] = None,
        urgency: Urgency | None = None,
        referred_from: FilterInstant | None = None,
        referred_to: FilterInstant | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> ReferralPage:
        try:
            found, next_cursor = await services.list_referrals(
                ListFilter(
                    organisation_id=caller.organisation_id,
                    role=caller.role.value,
                    status=status,
                    service_id=service_id,
                    urgency=urgency.value if urgency else None,
                    referred_from=referred_from,
                    referred_to=referred_to,
                ),
                make_uow(),
                limit=limit,
                cursor=cursor,
            )
        except ValueError as exc:
            raise invalid("cursor", "issued_cursor", str(exc)) from exc
        return ReferralPage(items=[ReferralOut.of(r) for r in found], next_cursor=next_cursor)

    @router.get("/referrals/{referral_id}", response_model=ReferralOut, name="get_referral", summary="One referral")
    async def get(referral_id: ReferralId, caller: party, response: Response) -> ReferralOut:
        try:
            referral, person, parallel = await services.get_referral(referral_id, caller_of(caller), make_uow())
        except services.NotFound as exc:
            raise not_found() from exc
        except services.NotYourReferral as exc:
            raise not_readable(exc) from exc
        response.headers["ETag"] = etag(referral.version)
        return ReferralOut.of(referral, person, parallel, viewer=(caller.organisation_id, caller.role.value))

    @router.get("/referrals/{referral_id}/history", response_model=list[HistoryEntry], summary="Every change, in order")
    async def history(referral_id: ReferralId, caller: party) -> list[HistoryEntry]:
        try:
            rows = await services.referral_history(referral_id, caller_of(caller), make_uow())
        except services.NotFound as exc:
            raise not_found() from exc
        except services.NotYourReferral as exc:
            raise not_readable(exc) from exc
        return [HistoryEntry.of(row) for row in rows]

    @router.post(
        "/referrals/{referral_id}/status",
        response_model=ReferralOut,
        summary="Move a referral to a new status",
        responses={
            409: {"description": "Illegal move: names the current status and the allowed moves"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "If-Match missing"},
        },
    )
    async def move(
        referral_id: ReferralId,
        body: StatusChange,
        caller: party,
        request: Request,
        response: Response,
        if_match: Annotated[str | None, Header(description="The referral's ETag, as last read.")] = None,
    ) -> ReferralOut:
        expected = parse_if_match(if_match)
        try:
            referral = await services.move_referral(
                services.MoveReferral(
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
                ),
                make_uow(),
            )
        except services.NotFound as exc:
            raise not_found() from exc
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
        except services.DuplicateReferral as exc:
            raise duplicate(exc, caller, request) from exc
        except MissingDetail as exc:
            raise invalid(exc.field, exc.rule, str(exc)) from exc
        response.headers["ETag"] = etag(referral.version)
        return ReferralOut.of(referral)

    @router.post(
        "/referrals/import",
        status_code=http.HTTP_201_CREATED,
        summary="Import an existing waiting list from CSV",
        description=csv_import.__doc__ or "",
        openapi_extra={
            "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
        },
        responses={422: {"description": "Every bad cell, with line, column and rule; nothing was imported"}},
    )
    async def import_csv(
        request: Request,
        caller: party,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        idempotency_key = check_idempotency_key(idempotency_key)
        if not request.headers.get("content-type", "").startswith("text/csv"):
            raise Problem(415, "Unsupported media type", "send the file as text/csv", kind="unsupported-media-type")
        content = await request.body()
        try:
            valid, bad_cells = csv_import.parse(content)
            status_code, payload = await importing.import_referrals(
                [_imported(line, row) for line, row in valid],
                caller_of(caller),
                make_uow(),
                child_ref_key,
                idempotency=services.Idempotency(idempotency_key, hashlib.sha256(content).hexdigest()),
                earlier_problems=[importing.ImportProblem(e.line, e.column, e.rule, e.message) for e in bad_cells],
            )
        except csv_import.CsvRejected as exc:
            raise _import_problem([(e.line, e.column, e.rule, e.message) for e in exc.errors]) from exc
        except importing.ImportRejected as exc:
            raise _import_problem([(e.line, e.column, e.rule, e.message) for e in exc.problems]) from exc
        except services.IdempotencyKeyReused as exc:
            raise invalid(
                "Idempotency-Key", "same_body_for_same_key", "this key was used with a different file"
            ) from exc
        return JSONResponse(payload, status_code=status_code)

    return router


def _import_problem(problems: list[tuple[int, str, str, str]]) -> Problem:
    return Problem(
        422,
        "Import rejected",
        f"{len(problems)} problems; nothing was imported",
        kind="import-rejected",
        errors=[
            {"line": line, "field": column, "rule": rule, "message": message}
            for line, column, rule, message in problems
        ],
    )


def _imported(line: int, row: csv_import.ImportRow) -> importing.ImportedReferral:
    return importing.ImportedReferral(
        line=line,
        service_id=row.service_id,
        referrer_org_id=row.referrer_org_id,
        person=PersonalDetails(
            given_name=row.child.given_name,
            family_name=row.child.family_name,
            date_of_birth=row.child.date_of_birth,
            nhs_number=row.child.nhs_number,
            upn=row.child.upn,
            reason=row.reason,
            consent=Consent(row.consent.given_by, row.consent.given_at, row.consent.scope),
        ),
        primary_need=row.primary_need.value,
        secondary_need=row.secondary_need.value if row.secondary_need else None,
        urgency=row.urgency.value,
        referred_at=row.referred_at,
        status=Status(row.status),
        accepted_at=row.accepted_at,
        status_at=row.status_at,
        appointment_at=row.appointment_at,
        hold_reason=row.hold_reason.value if row.hold_reason else None,
        expected_resume=row.expected_resume,
    )
