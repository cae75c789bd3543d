"""CSV exports in the official statistics' layouts: ``GET /v1/exports/...``."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from waitlists.domain.timeline import london_today
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep
from waitlists.entrypoints.edge import ID_PATTERN, AsOf, ScopeIdQuery, ScopeQuery, as_of_or_today, validation_problem
from waitlists.entrypoints.headers import content_disposition
from waitlists.service_layer import exports

router = APIRouter(prefix="/v1", tags=["waitlists"])


@router.get(
    "/exports/ehc-timeliness.csv",
    response_class=PlainTextResponse,
    summary="EHC plans issued within 20 weeks, all and excluding exceptions (DfE layout)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def ehc_csv(
    caller: Reader,
    uow: UnitOfWorkDep,
    area_id: Annotated[
        str,
        Query(min_length=1, max_length=64, pattern=ID_PATTERN, description="The local authority area (directory id)."),
    ],
    year: Annotated[int, Query(ge=2014, le=2100, description="The calendar year of the plans, not in the future.")],
) -> PlainTextResponse:
    """One row per service of the area that runs the 20-week EHC plan clock, in the DfE's EHC plan timeliness
    layout: plans issued in the year and the share within 20 weeks, with and without exception cases. Counts
    are under disclosure control as in the figures."""
    if year > london_today().year:
        raise validation_problem("year", "not_in_future", "year must not be in the future")
    sheet = await exports.ehc_timeliness(area_id, year, london_today(), uow, viewer=caller.organisation_id)
    return _csv_response(sheet, f"ehc-timeliness-{area_id}-{year}.csv")


@router.get(
    "/exports/rtt-distribution.csv",
    response_class=PlainTextResponse,
    summary="Referrals waiting by completed week on a date (RTT layout)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def rtt_csv(
    caller: Reader,
    uow: UnitOfWorkDep,
    scope: ScopeQuery,
    scope_id: ScopeIdQuery,
    as_of: AsOf = None,
) -> PlainTextResponse:
    """Referrals still waiting on `as_of`, by completed weeks waited, in the NHS referral-to-treatment
    distribution layout. Counts under disclosure control as in the figures."""
    day = as_of_or_today(as_of)
    sheet = await exports.rtt_distribution(scope, scope_id, day, uow, viewer=caller.organisation_id)
    return _csv_response(sheet, f"rtt-distribution-{scope_id}-{day.isoformat()}.csv")


def _csv_response(sheet: exports.Sheet, filename: str) -> PlainTextResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(sheet.header)
    writer.writerows(sheet.rows)
    return PlainTextResponse(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": content_disposition(filename)},
    )
