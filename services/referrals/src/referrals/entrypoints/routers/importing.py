"""Importing an existing waiting list from CSV (the file format is in entrypoints/csv_import.py)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi import status as http
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from referrals.domain.child import PersonalDetails
from referrals.domain.lifecycle import Status
from referrals.entrypoints import csv_import
from referrals.entrypoints.dependencies import Party, Settings, Uow, caller_of
from referrals.entrypoints.preconditions import IDEMPOTENCY_KEY, check_idempotency_key, idempotency_key_parameter
from referrals.entrypoints.problems import PROBLEM_RESPONSES, reused_idempotency_key
from referrals.service_layer import importing as import_cases
from referrals.service_layer.idempotency import Idempotency, IdempotencyKeyReused
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["referrals"], responses=PROBLEM_RESPONSES)


@router.post(
    "/referrals/import",
    status_code=http.HTTP_201_CREATED,
    summary="Import an existing waiting list from CSV",
    description=csv_import.DESCRIPTION,
    openapi_extra={
        "parameters": [idempotency_key_parameter("file")],
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": csv_import.EXAMPLE}},
        },
    },
    responses={
        201: {
            "description": "Every row was imported, in one transaction",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["imported", "referral_ids"],
                        "properties": {
                            "imported": {"type": "integer", "description": "How many referrals were imported."},
                            "referral_ids": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "The new referrals' ids, in the file's order.",
                            },
                        },
                    },
                    "example": {"imported": 1, "referral_ids": ["3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b"]},
                }
            },
        },
        415: {"description": "The body is not sent as text/csv"},
        422: {"description": "Every bad cell, with line, column and rule; nothing was imported"},
    },
)
async def import_csv(
    request: Request,
    caller: Party,
    uow: Uow,
    settings: Settings,
) -> JSONResponse:
    idempotency_key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    if not request.headers.get("content-type", "").startswith("text/csv"):
        raise Problem(415, "Unsupported media type", "send the file as text/csv", kind="unsupported-media-type")
    content = await request.body()
    try:
        # Up to max_import_bytes of CSV, each row validated: too long to hold up the event loop.
        valid, bad_cells = await run_in_threadpool(csv_import.parse, content)
        response = await import_cases.import_referrals(
            [_imported(line, row) for line, row in valid],
            caller_of(caller),
            uow,
            settings.child_ref_key.get_secret_value().encode(),
            idempotency=Idempotency(idempotency_key, hashlib.sha256(content).hexdigest()),
            earlier_problems=[import_cases.ImportProblem(e.line, e.column, e.rule, e.message) for e in bad_cells],
        )
    except csv_import.CsvRejected as exc:
        raise _import_problem([(e.line, e.column, e.rule, e.message) for e in exc.errors]) from exc
    except import_cases.ImportRejected as exc:
        raise _import_problem([(e.line, e.column, e.rule, e.message) for e in exc.problems]) from exc
    except IdempotencyKeyReused as exc:
        raise reused_idempotency_key("file") from exc
    return JSONResponse(response.body, status_code=response.status_code)


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


def _imported(line: int, row: csv_import.ImportRow) -> import_cases.ImportedReferral:
    return import_cases.ImportedReferral(
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
        ),
        consent=row.consent.given(),
        primary_need=row.primary_need,
        secondary_need=row.secondary_need,
        urgency=row.urgency,
        referred_at=row.referred_at,
        status=Status(row.status),
        accepted_at=row.accepted_at,
        status_at=row.status_at,
        appointment_at=row.appointment_at,
        hold_reason=row.hold_reason,
        expected_resume=row.expected_resume,
    )
