"""The audit log: a ``platform_admin`` reads every entry, an organisation's ``admin`` only its own
organisation's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from referrals.domain.audit import AuditQuery
from referrals.entrypoints.dependencies import (
    Lookup,
    PlatformOrAdmin,
    Uow,
    caller_of,
    check_admin_of_known_organisation,
)
from referrals.entrypoints.directory_schemas import AuditEntry
from referrals.entrypoints.problems import forbidden
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, REFERRAL_ID_PATTERN, FilterInstant
from referrals.service_layer import audit as audit_cases

router = APIRouter(prefix="/v1", tags=["directory and audit"])


@router.get("/audit", response_model=list[AuditEntry], summary="Who read personal data, newest first")
async def audit(
    caller: PlatformOrAdmin,
    is_known: Lookup,
    uow: Uow,
    referral_id: Annotated[
        str | None, Query(max_length=36, pattern=REFERRAL_ID_PATTERN, description="Only reads of this referral.")
    ] = None,
    organisation_id: Annotated[
        str | None,
        Query(max_length=64, pattern=IDENTIFIER_PATTERN, description="Only reads by this organisation (directory id)."),
    ] = None,
    since: Annotated[
        FilterInstant | None, Query(description="Only reads at or after this time (ISO 8601 with a time zone).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The most entries to return, 1 to 1000.")] = 100,
) -> list[AuditEntry]:
    """A platform admin reads every entry; an organisation's admin only its own organisation's."""
    await check_admin_of_known_organisation(caller, is_known)
    query = AuditQuery(limit=limit, referral_id=referral_id, organisation_id=organisation_id, since=since)
    try:
        entries = await audit_cases.audit_entries(query, caller_of(caller), uow)
    except audit_cases.NotYourOrganisation as exc:
        raise forbidden(str(exc)) from exc
    return [AuditEntry.model_validate(entry, from_attributes=True) for entry in entries]
