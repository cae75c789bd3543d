"""Webhook endpoints: register, read, change, pause, resume, rotate the secret, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator
from pydantic_core import PydanticCustomError

from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.subscriptions import MAX_URL_LENGTH, EndpointStatus, matches_known_type
from notifications.entrypoints.dependencies import CheckedUrls, EndpointId, Member, SecretGrace, Uow
from notifications.service_layer import endpoints as use_cases

EVENT_TYPE = r"^(\*|uk\.send\.[a-z_.]+(\.\*|\.v\d+))$"
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # PostgreSQL text refuses NUL; the rest is noise
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"

router = APIRouter(prefix="/v1", tags=["notifications"])


def _known_type(pattern: str) -> str:
    if not matches_known_type(pattern):
        raise PydanticCustomError(
            "unknown_event_type", "{pattern} matches no event type an endpoint can receive", {"pattern": pattern}
        )
    return pattern


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
        return EndpointSpec(
            str(self.url), tuple(self.event_types), tuple(self.service_ids), tuple(self.urgencies), self.description
        )


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    service_ids: list[str]
    urgencies: list[str]
    description: str
    status: EndpointStatus
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, endpoint: RegisteredEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id, url=endpoint.url, event_types=list(endpoint.event_types),
            service_ids=list(endpoint.service_ids), urgencies=list(endpoint.urgencies),
            description=endpoint.description, status=endpoint.status, disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since, created_at=endpoint.created_at,
        )  # fmt: skip


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="Shown once: keep it to verify signatures (Standard Webhooks, whsec_ prefix).")

    @classmethod
    def made(cls, made: use_cases.NewSecret) -> EndpointWithSecret:
        return cls(**EndpointOut.of(made.endpoint).model_dump(), secret=made.secret)


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecret, summary="Register a webhook endpoint")
async def create(body: EndpointIn, caller: Member, uow: Uow, policy: CheckedUrls) -> EndpointWithSecret:
    return EndpointWithSecret.made(await use_cases.register(uow, caller.organisation_id, body.spec(), policy=policy))


@router.get("/endpoints", response_model=list[EndpointOut], summary="Your organisation's endpoints")
async def list_(caller: Member, uow: Uow) -> list[EndpointOut]:
    return [EndpointOut.of(e) for e in await use_cases.list_for(uow, caller.organisation_id)]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="One endpoint")
async def get(endpoint_id: EndpointId, caller: Member, uow: Uow) -> EndpointOut:
    return EndpointOut.of(await use_cases.get(uow, caller.organisation_id, endpoint_id))


@router.put("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="Change URL, types or filters")
async def change(
    endpoint_id: EndpointId, body: EndpointIn, caller: Member, uow: Uow, policy: CheckedUrls
) -> EndpointOut:
    return EndpointOut.of(await use_cases.change(uow, caller.organisation_id, endpoint_id, body.spec(), policy=policy))


@router.post("/endpoints/{endpoint_id}/pause", response_model=EndpointOut, summary="Hold deliveries")
async def pause(endpoint_id: EndpointId, caller: Member, uow: Uow) -> EndpointOut:
    return EndpointOut.of(await use_cases.pause(uow, caller.organisation_id, endpoint_id))


@router.post("/endpoints/{endpoint_id}/resume", response_model=EndpointOut, summary="Resume (also after disabling)")
async def resume(endpoint_id: EndpointId, caller: Member, uow: Uow) -> EndpointOut:
    return EndpointOut.of(await use_cases.resume(uow, caller.organisation_id, endpoint_id))


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret, summary="New secret")
async def rotate(endpoint_id: EndpointId, caller: Member, uow: Uow, grace: SecretGrace) -> EndpointWithSecret:
    return EndpointWithSecret.made(await use_cases.rotate_secret(uow, caller.organisation_id, endpoint_id, grace=grace))


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint and its queue")
async def remove(endpoint_id: EndpointId, caller: Member, uow: Uow) -> Response:
    await use_cases.remove(uow, caller.organisation_id, endpoint_id)
    return Response(status_code=204)
