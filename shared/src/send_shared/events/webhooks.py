"""The webhook body: a CloudEvent in JSON structured mode, signed per Standard Webhooks (headers
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``). Public contract, like the Kafka payloads."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DataT = TypeVar("DataT")


class StructuredEvent(BaseModel, Generic[DataT]):
    """A CloudEvent in JSON structured mode: what every webhook delivery carries."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = Field("1.0", description="The CloudEvents version: always 1.0.")
    id: str = Field(description="The event id; the webhook-id header is `msg_` and this id, the same on every retry.")
    source: str = Field(description="The emitting service, e.g. /send/referrals.")
    type: str = Field(description="The event type, e.g. uk.send.referral.accepted.v1.")
    time: AwareDatetime = Field(description="When the system recorded the change (UTC).")
    subject: str | None = Field(None, description="The referral id (pings: the endpoint id).")
    datacontenttype: Literal["application/json"] = Field(
        "application/json", description="The media type of `data`: always application/json."
    )
    referralversion: str | None = Field(
        None, description="Referral events: the referral's version after the change, as a decimal."
    )
    referrallink: str | None = Field(
        None, description="Referral events: where the referrer or receiver reads the referral (with its own token)."
    )
    data: DataT = Field(description="The event's payload, as the schema of its type says.")


AnyStructuredEvent = StructuredEvent[dict[str, Any]]
