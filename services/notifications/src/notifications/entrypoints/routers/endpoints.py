"""Webhook endpoints: register, read, change, pause, resume, rotate the secret, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.subscriptions import (
    MAX_URL_LENGTH,
    SUBSCRIBABLE_TYPES,
    EndpointStatus,
    Urgency,
    matches_known_type,
)
from notifications.entrypoints.dependencies import CheckedUrls, EndpointId, Member, SecretGrace, Uow, WakeDispatcher
from notifications.service_layer import endpoints as use_cases

EVENT_TYPE = r"^(\*|uk\.send\.[a-z_.]+(\.\*|\.v\d+))$"
WILDCARD = r"^(\*|uk\.send\.[a-z_.]+\.\*)$"
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # PostgreSQL text refuses NUL; the rest is noise
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"

router = APIRouter(prefix="/v1", tags=["notifications"])


def _known_type(pattern: str) -> str:
    if not matches_known_type(pattern):
        raise PydanticCustomError(
            "unknown_event_type", "{pattern} matches no event type an endpoint can receive", {"pattern": pattern}
        )
    return pattern


# The server takes a known type or a wildcard matching one; the schema lists the types, and the wildcard's form.
_SUBSCRIBED: dict[str, Any] = {
    "anyOf": [
        {"title": "EventType", "type": "string", "enum": sorted(SUBSCRIBABLE_TYPES), "description": "One event type."},
        {
            "title": "EventTypeWildcard",
            "type": "string",
            "pattern": WILDCARD,
            "maxLength": 120,
            "description": "`*` for every type, or a prefix ending in `.*` (e.g. `uk.send.referral.*`) that matches "
            "at least one event type.",
        },
    ]
}
SubscribedType = Annotated[
    str, Field(pattern=EVENT_TYPE, max_length=120), AfterValidator(_known_type), WithJsonSchema(_SUBSCRIBED)
]
_URGENCY: dict[str, Any] = {"type": "string", "enum": list(Urgency), "description": "A referral urgency."}
UrgencyFilter = Annotated[str, Field(pattern=f"^({'|'.join(Urgency)})$"), WithJsonSchema(_URGENCY)]
_EVENT_TYPES = (
    "Event types, or wildcards that match at least one known type: the endpoint gets the events of these types."
)
_SERVICE_IDS = "Only events of referrals at these services (directory ids); empty for every service."
_URGENCIES = (
    "Only events of referrals with these urgencies; empty for every urgency. Clock alerts and consent events "
    "carry no urgency: while this lists any, they do not come."
)
_DESCRIPTION = "Your own note of what the endpoint is for; empty by default."
_ENDPOINT_EXAMPLE: JsonDict = {
    "id": "ep_5c0e3a9d2b7f4e18a6d1c4b9e2f07a35",
    "url": "https://agency.example.org/hooks/send",
    "event_types": ["uk.send.referral.*", "uk.send.waitlist.clock_breach_imminent.v1"],
    "service_ids": ["svc-camhs-core"],
    "urgencies": [],
    "description": "CAMHS duty inbox",
    "status": "active",
    "disabled_reason": None,
    "failing_since": None,
    "created_at": "2026-11-02T09:30:00Z",
}


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

    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)] = Field(
        description="Where the events are POSTed: https on a public address (in production), without "
        "credentials (the signature authenticates us); at most 2000 characters."
    )
    event_types: list[SubscribedType] = Field(min_length=1, max_length=50, description=_EVENT_TYPES)
    service_ids: list[Annotated[str, Field(max_length=64, pattern=ONE_LINE)]] = Field(
        default_factory=list, max_length=100, description=_SERVICE_IDS
    )
    urgencies: list[UrgencyFilter] = Field(default_factory=list, max_length=3, description=_URGENCIES)
    description: str = Field("", max_length=500, pattern=NO_CONTROL, description=_DESCRIPTION)

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
    """A webhook endpoint of your organisation."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_EXAMPLE]})

    id: str = Field(description="The endpoint's id (`ep_...`), for the other endpoint operations.")
    url: str = Field(description="Where the events are POSTed, as stored (normalised).")
    event_types: list[Annotated[str, WithJsonSchema(_SUBSCRIBED)]] = Field(description=_EVENT_TYPES)
    service_ids: list[str] = Field(description=_SERVICE_IDS)
    urgencies: list[Annotated[str, WithJsonSchema(_URGENCY)]] = Field(description=_URGENCIES)
    description: str = Field(description=_DESCRIPTION)
    status: EndpointStatus = Field(
        description="`active`: events go out; `paused` (by you): they are queued until you resume it; "
        "`disabled` (by us, after a 410 answer or five days of failures): no new events are queued for it, and "
        "what was queued waits until you resume it."
    )
    disabled_reason: str | None = Field(
        description="Why we disabled the endpoint, in words (e.g. `the endpoint answered 410 Gone`, `failing "
        "without a success for 5 days`); null unless `status` is `disabled`."
    )
    failing_since: datetime | None = Field(
        description="When its current run of failed attempts began; null while it is not failing."
    )
    created_at: datetime = Field(description="When the endpoint was registered.")

    @classmethod
    def of(cls, endpoint: RegisteredEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id, url=endpoint.url, event_types=list(endpoint.event_types),
            service_ids=list(endpoint.service_ids), urgencies=list(endpoint.urgencies),
            description=endpoint.description, status=endpoint.status, disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since, created_at=endpoint.created_at,
        )  # fmt: skip


class EndpointWithSecret(EndpointOut):
    """A webhook endpoint with its signing secret, shown this once."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_ENDPOINT_EXAMPLE, "secret": "whsec_IbwjJ0YGIHq7OuNIDjBxsZw8j5PV0iwR"}]}
    )

    secret: str = Field(description="Shown once: keep it to verify signatures (Standard Webhooks, whsec_ prefix).")

    @classmethod
    def made(cls, made: use_cases.NewSecret) -> EndpointWithSecret:
        return cls(**EndpointOut.of(made.endpoint).model_dump(), secret=made.secret)


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecret, summary="Register a webhook endpoint")
async def create(body: EndpointIn, caller: Member, uow: Uow, policy: CheckedUrls) -> EndpointWithSecret:
    """For a referrer, receiver or admin of an organisation in the directory: registers a URL that is sent,
    as signed webhooks, the events it subscribes to about your organisation's referrals (those it made or
    receives), and no others; a referral whose family withdrew consent is heard of by its receiving
    organisation only (docs/consent.md, "Who still hears after a withdrawal"). Answers the endpoint with its
    signing secret, shown this once. Send a test ping with `POST /v1/endpoints/{endpoint_id}/test`."""
    return EndpointWithSecret.made(await use_cases.register(uow, caller.organisation_id, body.spec(), policy=policy))


@router.get("/endpoints", response_model=list[EndpointOut], summary="Your organisation's endpoints")
async def list_(caller: Member, uow: Uow) -> list[EndpointOut]:
    """For a referrer, receiver or admin of an organisation in the directory: every webhook endpoint of your
    organisation, whoever registered it, with its status; never its secret."""
    return [EndpointOut.of(e) for e in await use_cases.list_for(uow, caller.organisation_id)]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="One endpoint")
async def get(endpoint_id: EndpointId, caller: Member, uow: Uow) -> EndpointOut:
    """For a referrer, receiver or admin of an organisation in the directory: one endpoint of your
    organisation, with its status and why it was disabled, if it was; never its secret. 404 for another
    organisation's endpoint."""
    return EndpointOut.of(await use_cases.get(uow, caller.organisation_id, endpoint_id))


@router.put("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="Change URL, types or filters")
async def change(
    endpoint_id: EndpointId, body: EndpointIn, caller: Member, uow: Uow, policy: CheckedUrls
) -> EndpointOut:
    """For a referrer, receiver or admin of an organisation in the directory: replaces the endpoint's URL,
    event types, filters and description (send all of them, as when registering). Events from now on are
    matched against the new subscription, and what is queued goes to the new URL; the secret and the status
    stay."""
    return EndpointOut.of(await use_cases.change(uow, caller.organisation_id, endpoint_id, body.spec(), policy=policy))


@router.post("/endpoints/{endpoint_id}/pause", response_model=EndpointOut, summary="Hold deliveries")
async def pause(endpoint_id: EndpointId, caller: Member, uow: Uow) -> EndpointOut:
    """For a referrer, receiver or admin of an organisation in the directory: stops sending to the endpoint.
    Its events keep being queued and go out, in order, once it is resumed. Answers the endpoint, `paused`."""
    return EndpointOut.of(await use_cases.pause(uow, caller.organisation_id, endpoint_id))


@router.post("/endpoints/{endpoint_id}/resume", response_model=EndpointOut, summary="Resume (also after disabling)")
async def resume(endpoint_id: EndpointId, caller: Member, uow: Uow, wake: WakeDispatcher) -> EndpointOut:
    """For a referrer, receiver or admin of an organisation in the directory: sends to a paused or disabled
    endpoint again, starting with what is queued for it, and clears its failure record. Answers the
    endpoint, `active`."""
    resumed = await use_cases.resume(uow, caller.organisation_id, endpoint_id)
    wake()  # after the commit: what is queued for it goes now, not at the dispatcher's next look
    return EndpointOut.of(resumed)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret, summary="New secret")
async def rotate(endpoint_id: EndpointId, caller: Member, uow: Uow, grace: SecretGrace) -> EndpointWithSecret:
    """For a referrer, receiver or admin of an organisation in the directory: gives the endpoint a new signing
    secret, shown this once. For a grace period (24 hours by default) deliveries carry signatures with both the
    old and the new secret, so your receiver can switch without losing any."""
    return EndpointWithSecret.made(await use_cases.rotate_secret(uow, caller.organisation_id, endpoint_id, grace=grace))


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint and its queue")
async def remove(endpoint_id: EndpointId, caller: Member, uow: Uow) -> Response:
    """For a referrer, receiver or admin of an organisation in the directory: deletes the endpoint with its
    queued deliveries and delivery log. Nothing more is sent to it; answers no content."""
    await use_cases.remove(uow, caller.organisation_id, endpoint_id)
    return Response(status_code=204)
