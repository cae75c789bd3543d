"""Deliveries to an endpoint: a test ping, the delivery log, sending again, and retrying now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.config import JsonDict

from notifications.domain.delivery import AttemptRecord, DeliveryLogEntry, DeliveryStatus, webhook_id
from notifications.domain.subscriptions import SUBSCRIBABLE_TYPES
from notifications.entrypoints.dependencies import MAX_DB_ID, EndpointId, Member, Settings, Uow, WakeDispatcher
from notifications.service_layer import endpoints as use_cases
from send_shared.events.schemas import WEBHOOK_PING
from send_shared.web.problems import Problem

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

router = APIRouter(prefix="/v1", tags=["notifications"])
DeliveryId = Annotated[int, Path(ge=1, le=MAX_DB_ID, description="A delivery's id, from the delivery log.")]
DeliveredType = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": sorted(SUBSCRIBABLE_TYPES | {WEBHOOK_PING}), "title": "EventType"}),
]
_ATTEMPT_EXAMPLE: JsonDict = {
    "attempted_at": "2026-11-09T11:00:02Z",
    "status_code": 503,
    "latency_ms": 412,
    "error": None,
    "response_excerpt": "Service Unavailable",
}


class AttemptOut(BaseModel):
    """One attempt to deliver an event: what your endpoint answered, or why there was no answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ATTEMPT_EXAMPLE]})

    attempted_at: datetime = Field(description="When the attempt was made.")
    status_code: int | None = Field(description="The HTTP status your endpoint answered; null if it did not answer.")
    latency_ms: int = Field(description="How long the attempt took, in milliseconds.")
    error: str | None = Field(
        description="Why there was no answer (e.g. a timeout, a connection error, or an address we must not "
        "call); null if there was one."
    )
    response_excerpt: str | None = Field(description="The start of your endpoint's answer body, if it had one.")

    @classmethod
    def of(cls, attempt: AttemptRecord) -> AttemptOut:
        return cls(
            attempted_at=attempt.attempted_at, status_code=attempt.status_code, latency_ms=attempt.latency_ms,
            error=attempt.error, response_excerpt=attempt.response_excerpt,
        )  # fmt: skip


class DeliveryOut(BaseModel):
    """One event's delivery to the endpoint, with every attempt made."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1842,
                    "event_id": "0b6f4c1e-9d2a-4f7b-8e3c-5a1d2c3b4e5f",
                    "webhook_id": "msg_0b6f4c1e-9d2a-4f7b-8e3c-5a1d2c3b4e5f",
                    "event_type": "uk.send.referral.accepted.v1",
                    "status": "pending",
                    "attempts": 1,
                    "next_attempt_at": "2026-11-09T11:05:02Z",
                    "created_at": "2026-11-09T11:00:01Z",
                    "succeeded_at": None,
                    "attempt_log": [_ATTEMPT_EXAMPLE],
                }
            ]
        }
    )

    id: int = Field(description="The delivery's id: the `before` cursor of the log, and what redeliver names.")
    event_id: str = Field(description="The event's id (the CloudEvent `id` in the body).")
    webhook_id: str = Field(description="The `webhook-id` header of every attempt: `msg_` and the event id.")
    event_type: DeliveredType = Field(description="The event's type (the CloudEvent `type`).")
    status: DeliveryStatus = Field(
        description="`pending`: not yet delivered (see `next_attempt_at`); `succeeded`: your endpoint answered "
        "2xx; `failed`: no attempts left, or it answered 410; `refused`: not sent, as your organisation is not "
        "concerned by the event."
    )
    attempts: int = Field(description="How many attempts were made.")
    next_attempt_at: datetime | None = Field(
        description="When the next attempt is due, while the delivery is pending; otherwise null."
    )
    created_at: datetime = Field(description="When the delivery was queued.")
    succeeded_at: datetime | None = Field(description="When your endpoint accepted it; null until then.")
    attempt_log: list[AttemptOut] = Field(description="Every attempt, in order.")

    @classmethod
    def of(cls, entry: DeliveryLogEntry) -> DeliveryOut:
        return cls(
            id=entry.id, event_id=entry.event_id, webhook_id=webhook_id(entry.event_id), event_type=entry.event_type,
            status=entry.status, attempts=entry.attempts, next_attempt_at=entry.next_attempt_at,
            created_at=entry.created_at, succeeded_at=entry.succeeded_at,
            attempt_log=[AttemptOut.of(a) for a in entry.attempt_log],
        )  # fmt: skip


class RedeliverSince(BaseModel):
    """Which deliveries to send again: every one queued since a time."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"since": "2026-11-09T00:00:00Z"}]})
    since: AwareDatetime = Field(
        ge=EARLIEST,
        description="Deliveries queued at or after this time are sent again: ISO 8601 with a time zone, not "
        "before 2000-01-01, not in the future.",
    )


class Queued(BaseModel):
    """How many deliveries were queued."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"queued": 1}]})
    queued: int = Field(description="How many deliveries were queued; they go out shortly, in order.")


@router.post("/endpoints/{endpoint_id}/test", status_code=202, response_model=Queued, summary="Send a ping event")
async def ping(endpoint_id: EndpointId, caller: Member, uow: Uow, config: Settings) -> Queued:
    """For a referrer, receiver or admin of an organisation in the directory: queues a
    `uk.send.webhook.ping.v1` event for this endpoint alone, whatever it subscribes to, to check that it
    receives and verifies our webhooks; follow it in the delivery log. Answers `queued`: 1."""
    await use_cases.ping(uow, caller.organisation_id, endpoint_id, source=config.event_source)
    return Queued(queued=1)


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=list[DeliveryOut], summary="Delivery log")
async def deliveries(
    endpoint_id: EndpointId, caller: Member, uow: Uow,
    limit: Annotated[int, Query(ge=1, le=200, description="The most deliveries on one page, 1 to 200.")] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_DB_ID, description="Cursor: the smallest id of the previous page.")] = None,
) -> list[DeliveryOut]:  # fmt: skip
    """For a referrer, receiver or admin of an organisation in the directory: the endpoint's deliveries,
    newest first, a page at a time, each with its status and every attempt (what your endpoint answered, how
    fast). For the next page, pass the smallest `id` of this one as `before`."""
    log = await use_cases.delivery_log(uow, caller.organisation_id, endpoint_id, limit=limit, before=before)
    return [DeliveryOut.of(entry) for entry in log]


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Queued,
    summary="Send one delivery again",
)
async def redeliver_one(endpoint_id: EndpointId, delivery_id: DeliveryId, caller: Member, uow: Uow) -> Queued:
    """For a referrer, receiver or admin of an organisation in the directory: sends one delivery's event
    again, whatever became of it, as a new delivery with the same `webhook-id` (so your receiver can tell it
    has seen it). Answers `queued`: 1; 404 if the delivery is not this endpoint's."""
    await use_cases.redeliver_one(uow, caller.organisation_id, endpoint_id, delivery_id)
    return Queued(queued=1)


@router.post("/endpoints/{endpoint_id}/redeliver", status_code=202, response_model=Queued, summary="Everything since")
async def redeliver_since(endpoint_id: EndpointId, body: RedeliverSince, caller: Member, uow: Uow) -> Queued:
    """For a referrer, receiver or admin of an organisation in the directory: sends again, once each and in
    their order, the events of every delivery to this endpoint queued since `since`, e.g. after your receiver
    lost data. Each keeps its `webhook-id`. Answers how many were queued."""
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
