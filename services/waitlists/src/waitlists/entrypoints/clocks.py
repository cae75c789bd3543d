"""One referral's clocks: ``GET /v1/referrals/{referral_id}/clocks``."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from send_shared.web.problems import Problem
from waitlists.domain.clocks import Clock, ClockKind, ClockState
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep
from waitlists.entrypoints.edge import AsOf, ReferralIdPath, as_of_or_today
from waitlists.service_layer import reporting

router = APIRouter(prefix="/v1", tags=["waitlists"])


class ClockStateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"clock": "cypmh_4w", "target_days": 28, "start": "2026-11-02", "state": "running",
                 "waiting_days": 29, "stopped_on": None, "breach_date": "2026-11-30", "exception": False,
                 "imminent": False, "paused": False, "breached_on": None}
            ]
        }
    )  # fmt: skip

    clock: ClockKind = Field(description="Which clock: a statutory or service waiting-time clock code.")
    target_days: int = Field(description="The clock's target, in days from its start.")
    start: date = Field(description="The day the clock started (usually the referral), YYYY-MM-DD.")
    state: ClockState = Field(
        description="running, paused (on a family hold), met, breached, or stopped (ended before its own stop)."
    )
    waiting_days: int = Field(
        description="Days counted on the clock by as_of, or by its stop; days on a family hold do not count."
    )
    stopped_on: date | None = Field(description="The day the clock stopped, or null while it runs.")
    breach_date: date | None = Field(
        description="First day over the target, for a clock still waiting: coming, or past if it breached "
        "(a hold after it does not move it). None while paused before it."
    )
    exception: bool = Field(description="An exception case (e.g. school closed 4 weeks): reported apart (DfE `_ex`).")
    imminent: bool = Field(description="Still waiting and breaching within 7 days of as_of.")
    paused: bool = Field(description="On a family-initiated hold on as_of; a clock that breached first stays breached.")
    breached_on: date | None = Field(description="The day the clock breached, if it has by as_of (waiting or stopped).")


@router.get(
    "/referrals/{referral_id}/clocks",
    response_model=list[ClockStateOut],
    summary="A referral's clocks",
    description="For the referrer and the receiving service's organisation only; to anyone else the "
    "referral does not exist (404).",
)
async def clocks(
    referral_id: ReferralIdPath,
    caller: Reader,
    uow: UnitOfWorkDep,
    as_of: AsOf = None,
) -> list[ClockStateOut]:
    day = as_of_or_today(as_of)
    found = await reporting.referral_clocks(referral_id, day, uow, viewer=caller.organisation_id)
    if found is None:
        raise Problem(404, "Not found", "no such referral", kind="not-found")
    return [clock_out(c, day) for c in found]


def clock_out(c: Clock, day: date) -> ClockStateOut:
    return ClockStateOut(
        clock=c.kind,
        target_days=c.target,
        start=c.start,
        state=c.state,
        waiting_days=c.waiting_days,
        stopped_on=c.stopped_on,
        breach_date=c.breach_date,
        exception=c.exception,
        imminent=c.imminent_on(day),
        paused=c.paused,
        breached_on=c.breached_on,
    )
