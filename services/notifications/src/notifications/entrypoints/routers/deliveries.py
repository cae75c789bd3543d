"""Deliveries to an endpoint: a test ping, the delivery log, sending again, and retrying now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notifications.domain.delivery import AttemptRecord, DeliveryLogEntry, DeliveryStatus, webhook_id
from notifications.entrypoints.dependencies import MAX_DB_ID, EndpointId, Member, Settings, Uow, WakeDispatcher
from notifications.service_layer import endpoints as use_cases
from send_shared.web.problems import Problem

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

router = APIRouter(prefix="/v1", tags=["notifications"])
DeliveryId = Annotated[int, Path(ge=1, le=MAX_DB_ID, description="A delivery's id, from the delivery log.")]


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None

    @classmethod
    def of(cls, attempt: AttemptRecord) -> AttemptOut:
        return cls(
            attempted_at=attempt.attempted_at, status_code=attempt.status_code, latency_ms=attempt.latency_ms,
            error=attempt.error, response_excerpt=attempt.response_excerpt,
        )  # fmt: skip


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    webhook_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None
    attempt_log: list[AttemptOut]

    @classmethod
    def of(cls, entry: DeliveryLogEntry) -> DeliveryOut:
        return cls(
            id=entry.id, event_id=entry.event_id, webhook_id=webhook_id(entry.event_id), event_type=entry.event_type,
            status=entry.status, attempts=entry.attempts, next_attempt_at=entry.next_attempt_at,
            created_at=entry.created_at, succeeded_at=entry.succeeded_at,
            attempt_log=[AttemptOut.of(a) for a in entry.attempt_log],
        )  # fmt: skip


class RedeliverSince(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(ge=EARLIEST, description="With a time zone; not before 2000-01-01.")


class Queued(BaseModel):
    queued: int


@router.post("/endpoints/{endpoint_id}/test", status_code=202, response_model=Queued, summary="Send a ping event")
async def ping(endpoint_id: EndpointId, caller: Member, uow: Uow, config: Settings) -> Queued:
    await use_cases.ping(uow, caller.organisation_id, endpoint_id, source=config.event_source)
    return Queued(queued=1)


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=list[DeliveryOut], summary="Delivery log")
async def deliveries(
    endpoint_id: EndpointId, caller: Member, uow: Uow, limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_DB_ID, description="Cursor: the smallest id of the previous page.")] = None,
) -> list[DeliveryOut]:  # fmt: skip
    log = await use_cases.delivery_log(uow, caller.organisation_id, endpoint_id, limit=limit, before=before)
    return [DeliveryOut.of(entry) for entry in log]


@router.post("/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=Queued)
async def redeliver_one(endpoint_id: EndpointId, delivery_id: DeliveryId, caller: Member, uow: Uow) -> Queued:
    await use_cases.redeliver_one(uow, caller.organisation_id, endpoint_id, delivery_id)
    return Queued(queued=1)


@router.post("/endpoints/{endpoint_id}/redeliver", status_code=202, response_model=Queued, summary="Everything since")
async def redeliver_since(endpoint_id: EndpointId, body: RedeliverSince, caller: Member, uow: Uow) -> Queued:
    if body.since > datetime.now(UTC):
        raise Problem(422, "Validation failed", "since is in the future", kind="validation",
                      errors=[{"field": "since", "rule": "not_in_future", "message": "since is in the future"}])  # fmt: skip
    return Queued(queued=await use_cases.redeliver_since(uow, caller.organisation_id, endpoint_id, body.since))


class MadeDue(BaseModel):
    """The answer to retry-now."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"made_due": 3}]})
    made_due: int = Field(ge=0, description="How many deliveries that were waiting for a retry are now due.")


@router.post(
    "/endpoints/{endpoint_id}/retry-now",
    response_model=MadeDue,
    summary="Retry now what waits for a retry",
    description="After failed attempts a delivery waits for its next retry, up to hours away (exponential backoff). "
    "Once the receiver is fixed, this makes every delivery of the endpoint that is waiting for a retry due at once "
    "and wakes the dispatcher; deliveries not yet attempted are due already. A paused or disabled endpoint keeps "
    "them until it is resumed. Each referral's events still go out in order.",
    responses={
        200: {"description": "How many deliveries were made due (0 when none was waiting)."},
        404: {"description": "No such endpoint for your organisation."},
    },
)
async def retry_now(endpoint_id: EndpointId, caller: Member, uow: Uow, wake: WakeDispatcher) -> MadeDue:
    made_due = await use_cases.retry_now(uow, caller.organisation_id, endpoint_id)
    if made_due:
        wake()
    return MadeDue(made_due=made_due)
