"""The problem documents (RFC 9457) the referrals API answers with."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from referrals.domain.model import DuplicateReferral, MissingDetail
from referrals.service_layer.errors import NotYourReferral
from send_shared.auth import Principal
from send_shared.web.links import url_for
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


def invalid(field: str, rule: str, message: str) -> Problem:
    return Problem(
        422,
        "Validation failed",
        message,
        kind="validation",
        errors=[{"field": field, "rule": rule, "message": message}],
    )


def missing_detail(exc: MissingDetail) -> Problem:
    return invalid(exc.field, exc.rule, str(exc))


def reused_idempotency_key(what: str) -> Problem:
    return invalid("Idempotency-Key", "same_body_for_same_key", f"this key was used with a different {what}")


def duplicate(exc: DuplicateReferral, viewer: Principal, request: Request) -> Problem:
    """A link to the open referral for whoever may read it (its referrer's referrer role, its receiver's
    receiver role); anyone else learns only that one exists at the service and what to do, never its id
    (which would tell who referred the child, and when)."""
    existing = exc.existing
    if existing.readable_by(viewer.organisation_id, viewer.role.value):
        link = url_for(request, "get_referral", referral_id=existing.id)
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


def not_readable(exc: NotYourReferral) -> Problem:
    return Problem(403, "Forbidden", str(exc), kind="forbidden")


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, kind="forbidden")
