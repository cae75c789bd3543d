"""HTTP API of the notifications service (v1): webhook endpoints, their delivery log, and email contacts."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    UrlConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import contacts
from notifications.domain.subscriptions import MAX_URL_LENGTH, UnsafeTarget, matches_known_type
from notifications.service_layer.directory import directory_member
from notifications.service_layer.endpoints import EndpointNotFound, EndpointService, EndpointSpec
from send_shared.auth import Principal, Role, TokenVerifier, require_known_roles
from send_shared.db import upsert_insert
from send_shared.web.problems import Problem

EVENT_TYPE = r"^(\*|uk\.send\.[a-z_.]+(\.\*|\.v\d+))$"
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # PostgreSQL text refuses NUL; the rest is noise
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
MAX_DB_ID = 2**63 - 1  # bigint: a larger id is refused here rather than overflow in the database
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _known_type(pattern: str) -> str:
    if not matches_known_type(pattern):
        raise PydanticCustomError(
            "unknown_event_type", "{pattern} matches no event type an endpoint can receive", {"pattern": pattern}
        )
    return pattern


def _ascii_email(email: str) -> str:
    if not email.isascii():
        raise PydanticCustomError("ascii_email", "only ASCII email addresses are accepted (our relay has no SMTPUTF8)")
    return email


SubscribedType = Annotated[str, Field(pattern=EVENT_TYPE, max_length=120), AfterValidator(_known_type)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://agency.example.org/hooks/send",
                    "event_types": ["uk.send.referral.*", "uk.send.waitlist.clock_breach_imminent.v1"],
                    "service_ids": ["svc-camhs-core"],
                    "description": "CAMHS duty inbox",
                }
            ]
        },
    )

    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)]
    event_types: list[SubscribedType] = Field(
        min_length=1, max_length=50, description="Event types, or patterns that match at least one known type."
    )
    service_ids: list[Annotated[str, Field(max_length=64, pattern=ONE_LINE)]] = Field(
        default_factory=list, max_length=100
    )
    urgencies: list[Annotated[str, Field(pattern=r"^(routine|urgent|very_urgent)$")]] = Field(
        default_factory=list, max_length=3
    )
    description: str = Field("", max_length=500, pattern=NO_CONTROL)

    @field_validator("url")
    @classmethod
    def _url_fits(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        """The length as stored (after IDNA and percent-encoding), not only as sent."""
        if len(str(url)) > MAX_URL_LENGTH:
            raise PydanticCustomError(
                "url_too_long", "the URL is longer than {limit} characters once normalised", {"limit": MAX_URL_LENGTH}
            )
        return url

    def spec(self) -> EndpointSpec:
        return EndpointSpec(str(self.url), self.event_types, self.service_ids, self.urgencies, self.description)


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    service_ids: list[str]
    urgencies: list[str]
    description: str
    status: str
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> "EndpointOut":
        return cls.model_validate({k: row[k] for k in cls.model_fields})


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="Shown once: keep it to verify signatures (Standard Webhooks, whsec_ prefix).")


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    webhook_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None
    attempt_log: list[AttemptOut]


class RedeliverSince(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(ge=EARLIEST, description="With a time zone; not before 2000-01-01.")


class Queued(BaseModel):
    queued: int


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emails: list[Annotated[EmailStr, AfterValidator(_ascii_email)]] = Field(max_length=20)


def build_router(
    *, endpoints_service: EndpointService, sessions: async_sessionmaker[AsyncSession], verifier: TokenVerifier,
    event_source: str,
) -> APIRouter:  # fmt: skip
    router = APIRouter(prefix="/v1", tags=["notifications"])
    # ops see aggregates elsewhere and subscribe to nothing here; the organisation must be in the directory
    member = Annotated[
        Principal,
        Depends(require_known_roles(verifier, directory_member(sessions), Role.REFERRER, Role.RECEIVER, Role.ADMIN)),
    ]
    endpoint_id = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
    delivery_id_ = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
    svc = endpoints_service

    def not_found() -> Problem:
        return Problem(404, "Not found", "no such endpoint", kind="not-found")

    def unsafe(exc: UnsafeTarget) -> Problem:
        return Problem(422, "Validation failed", str(exc), kind="validation",
                       errors=[{"field": "url", "rule": "safe_target", "message": str(exc)}])  # fmt: skip

    @router.post(
        "/endpoints", status_code=201, response_model=EndpointWithSecret, summary="Register a webhook endpoint"
    )
    async def create(body: EndpointIn, caller: member) -> EndpointWithSecret:
        try:
            row, secret = await svc.create(caller.organisation_id, body.spec())
        except UnsafeTarget as exc:
            raise unsafe(exc) from exc
        return EndpointWithSecret(**EndpointOut.of(row).model_dump(), secret=secret)

    @router.get("/endpoints", response_model=list[EndpointOut], summary="Your organisation's endpoints")
    async def list_(caller: member) -> list[EndpointOut]:
        return [EndpointOut.of(r) for r in await svc.list_for(caller.organisation_id)]

    @router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="One endpoint")
    async def get(endpoint_id: endpoint_id, caller: member) -> EndpointOut:
        try:
            return EndpointOut.of(await svc.get(caller.organisation_id, endpoint_id))
        except EndpointNotFound as exc:
            raise not_found() from exc

    @router.put("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="Change URL, types or filters")
    async def change(endpoint_id: endpoint_id, body: EndpointIn, caller: member) -> EndpointOut:
        try:
            return EndpointOut.of(await svc.change(caller.organisation_id, endpoint_id, body.spec()))
        except EndpointNotFound as exc:
            raise not_found() from exc
        except UnsafeTarget as exc:
            raise unsafe(exc) from exc

    @router.post("/endpoints/{endpoint_id}/pause", response_model=EndpointOut, summary="Hold deliveries")
    async def pause(endpoint_id: endpoint_id, caller: member) -> EndpointOut:
        try:
            return EndpointOut.of(await svc.pause(caller.organisation_id, endpoint_id))
        except EndpointNotFound as exc:
            raise not_found() from exc

    @router.post("/endpoints/{endpoint_id}/resume", response_model=EndpointOut, summary="Resume (also after disabling)")
    async def resume(endpoint_id: endpoint_id, caller: member) -> EndpointOut:
        try:
            return EndpointOut.of(await svc.resume(caller.organisation_id, endpoint_id))
        except EndpointNotFound as exc:
            raise not_found() from exc

    @router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret, summary="New secret")
    async def rotate(endpoint_id: endpoint_id, caller: member) -> EndpointWithSecret:
        try:
            row, secret = await svc.rotate_secret(caller.organisation_id, endpoint_id)
        except EndpointNotFound as exc:
            raise not_found() from exc
        return EndpointWithSecret(**EndpointOut.of(row).model_dump(), secret=secret)

    @router.post("/endpoints/{endpoint_id}/test", status_code=202, response_model=Queued, summary="Send a ping event")
    async def ping(endpoint_id: endpoint_id, caller: member) -> Queued:
        try:
            await svc.ping(caller.organisation_id, endpoint_id, source=event_source)
        except EndpointNotFound as exc:
            raise not_found() from exc
        return Queued(queued=1)

    @router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint and its queue")
    async def remove(endpoint_id: endpoint_id, caller: member) -> Response:
        try:
            await svc.remove(caller.organisation_id, endpoint_id)
        except EndpointNotFound as exc:
            raise not_found() from exc
        return Response(status_code=204)

    @router.get("/endpoints/{endpoint_id}/deliveries", response_model=list[DeliveryOut], summary="Delivery log")
    async def deliveries(
        endpoint_id: endpoint_id, caller: member, limit: Annotated[int, Query(ge=1, le=200)] = 50,
        before: Annotated[int | None, Query(ge=1, le=MAX_DB_ID, description="Cursor: the smallest id of the previous page.")] = None,
    ) -> list[DeliveryOut]:  # fmt: skip
        try:
            rows = await svc.deliveries(caller.organisation_id, endpoint_id, limit=limit, before=before)
        except EndpointNotFound as exc:
            raise not_found() from exc
        return [
            DeliveryOut.model_validate(
                {
                    **r,
                    "webhook_id": f"msg_{r['event_id']}",
                    "attempt_log": [AttemptOut.model_validate(a) for a in r["attempt_log"]],
                }
            )
            for r in rows
        ]

    @router.post("/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=Queued)
    async def redeliver_one(endpoint_id: endpoint_id, delivery_id: delivery_id_, caller: member) -> Queued:
        try:
            await svc.redeliver_one(caller.organisation_id, endpoint_id, delivery_id)
        except EndpointNotFound as exc:
            raise not_found() from exc
        return Queued(queued=1)

    @router.post(
        "/endpoints/{endpoint_id}/redeliver", status_code=202, response_model=Queued, summary="Everything since"
    )
    async def redeliver_since(endpoint_id: endpoint_id, body: RedeliverSince, caller: member) -> Queued:
        if body.since > datetime.now(UTC):
            raise Problem(422, "Validation failed", "since is in the future", kind="validation",
                          errors=[{"field": "since", "rule": "not_in_future", "message": "since is in the future"}])  # fmt: skip
        try:
            return Queued(queued=await svc.redeliver_since(caller.organisation_id, endpoint_id, body.since))
        except EndpointNotFound as exc:
            raise not_found() from exc

    @router.put("/contacts", response_model=ContactsIn, summary="Where your organisation wants email")
    async def put_contacts(body: ContactsIn, caller: member) -> ContactsIn:
        async with sessions() as session, session.begin():
            insert = upsert_insert(session)
            stmt = insert(contacts).values(organisation_id=caller.organisation_id, emails=[str(e) for e in body.emails],
                                           updated_at=datetime.now(UTC))  # fmt: skip
            await session.execute(stmt.on_conflict_do_update(index_elements=[contacts.c.organisation_id],
                                                             set_={"emails": stmt.excluded.emails, "updated_at": stmt.excluded.updated_at}))  # fmt: skip
        return body

    return router
