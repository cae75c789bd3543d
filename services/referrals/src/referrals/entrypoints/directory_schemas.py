"""Request and response bodies of the directory and audit API (v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.domain.interim import InterimOffer, WaitEstimate
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, Text, WaitEstimateOut


class OrganisationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Oakfield Primary School", "kind": "school", "area_id": "la-northshire", "trust_id": None}
            ]
        },
    )

    name: Text = Field(min_length=1, max_length=200, description="The organisation's name, as people know it.")
    kind: OrganisationKind = Field(description="What kind of organisation it is.")
    area_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The local authority area it is in (directory id).",
    )
    trust_id: str | None = Field(
        None,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The trust a school belongs to (directory id); null for anyone else.",
    )


class OrganisationOut(OrganisationIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "org-oakfield-primary",
                    "version": 1,
                    "name": "Oakfield Primary School",
                    "kind": "school",
                    "area_id": "la-northshire",
                    "trust_id": None,
                }
            ]
        }
    )

    id: str = Field(description="The organisation's directory id.")
    version: int = Field(description="Goes up by one with every change to the entry.")


_SERVICE_EXAMPLE: JsonDict = {
    "organisation_id": "org-northshire-camhs",
    "name": "CAMHS neurodevelopmental",
    "needs": ["ASD", "SEMH"],
    "urgencies": ["routine"],
    "clocks": ["service_target"],
    "target_days": 126,
    "contact_phone": "01632 960 200",
    "contact_email": "camhs@northshire-camhs.example",
    "contact_url": "https://northshire-camhs.example/contact",
}


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SERVICE_EXAMPLE]})

    organisation_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The organisation that runs the service (directory id).",
    )
    name: Text = Field(min_length=1, max_length=200, description="The service's name, as families know it.")
    needs: list[NeedCode] = Field(min_length=1, description="The DfE SEN need codes the service takes referrals for.")
    urgencies: list[Urgency] = Field(min_length=1, description="The urgencies the service takes referrals at.")
    clocks: list[Clock] = Field(
        default_factory=list, description="The waiting-time clocks that run on the service's referrals."
    )
    target_days: int | None = Field(
        None, ge=1, le=3650, description="Target of the service_target clock, in days from referral to start."
    )
    active: bool = Field(True, description="Whether the service takes new referrals; default true.")
    contact_phone: str | None = Field(
        None,
        max_length=32,
        pattern=r"^\+?[0-9][0-9 ()-]{5,30}$",
        description="The service's phone number for families (shown on the family view); never a person's.",
    )
    contact_email: str | None = Field(
        None,
        max_length=254,
        pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
        description="The service's email address for families (shown on the family view); a team's, not a person's.",
    )
    contact_url: str | None = Field(
        None,
        max_length=500,
        pattern=r"^https?://[^\s<>\"]+$",
        description="The service's web page for families (shown on the family view).",
    )


class ServiceOut(ServiceIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "svc-camhs-neuro",
                    "version": 1,
                    **_SERVICE_EXAMPLE,
                    "active": True,
                    "wait_estimate": {
                        "enough_data": False, "as_of": "2026-11-30", "window_weeks": 26, "children": 12,
                        "to_support_median_days": None, "to_support_p90_days": None, "to_support_p90_low_days": None,
                        "to_support_p90_high_days": None, "to_clock_stop_median_days": None,
                        "to_clock_stop_p90_days": None,
                        "summary": "Not enough data yet to say how long children wait.",
                    },
                }
            ]
        }
    )  # fmt: skip

    id: str = Field(description="The service's directory id.")
    version: int = Field(description="Goes up by one with every change to the entry.")
    wait_estimate: WaitEstimateOut | None = Field(
        None,
        description="How long children wait at the service, as waitlists last predicted it (median and 90th "
        "percentile to support starting, or not enough data yet): in the directory's list of services.",
    )


_OFFER_EXAMPLE: JsonDict = {
    "service_id": "svc-camhs-core",
    "provider_org_id": "org-family-voice",
    "name": "Parent peer support group",
    "description": "Meet other parents whose children are waiting for help. Friendly, free and local.",
    "needs": ["SEMH", "ASD"],
    "urgencies": [],
    "min_age": None,
    "max_age": None,
    "contact_phone": "01632 960 400",
    "contact_email": None,
    "contact_url": "https://family-voice.example/groups",
    "active": True,
}


class InterimOfferIn(BaseModel):
    """Support a child can have while waiting for a service: the service's own, a trust's in-house specialists,
    a voluntary organisation's. Directory data: never a person's details."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_OFFER_EXAMPLE]})

    service_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The service whose waiting children it suits (directory id); listed with that service.",
    )
    provider_org_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The organisation that provides it (directory id): the service's own, a trust, a voluntary one.",
    )
    name: Text = Field(min_length=1, max_length=200, description="Its name, as families know it.")
    description: Text = Field(
        min_length=1, max_length=1000, description="What it is and how it helps, in plain English for a family."
    )
    needs: list[NeedCode] = Field(min_length=1, description="The DfE SEN need codes it suits.")
    urgencies: list[Urgency] = Field(
        default_factory=list, description="The urgencies it suits; empty (the default) for any."
    )
    min_age: int | None = Field(None, ge=0, le=25, description="Youngest age it suits, in years; null for any.")
    max_age: int | None = Field(None, ge=0, le=25, description="Oldest age it suits, in years; null for any.")
    contact_phone: str | None = Field(
        None, max_length=32, pattern=r"^\+?[0-9][0-9 ()-]{5,30}$", description="How to reach it: phone."
    )
    contact_email: str | None = Field(
        None, max_length=254, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", description="How to reach it: email."
    )
    contact_url: str | None = Field(
        None, max_length=500, pattern=r"^https?://[^\s<>\"]+$", description="How to reach it: web page."
    )
    active: bool = Field(True, description="Whether it is signposted to; default true.")


class InterimOfferOut(InterimOfferIn):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "io-family-voice-peer-support", "version": 1, **_OFFER_EXAMPLE}]}
    )

    id: str = Field(description="The offer's directory id.")
    version: int = Field(description="Goes up by one with every change to the entry.")


def offer_out(o: InterimOffer) -> InterimOfferOut:
    return InterimOfferOut.model_validate(
        {
            "id": o.id,
            "version": o.version,
            "service_id": o.service_id,
            "provider_org_id": o.provider_org_id,
            "name": o.name,
            "description": o.description,
            "needs": list(o.needs),
            "urgencies": list(o.urgencies),
            "min_age": o.min_age,
            "max_age": o.max_age,
            "contact_phone": o.contact_phone,
            "contact_email": o.contact_email,
            "contact_url": o.contact_url,
            "active": o.active,
        }
    )


class AuditEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-09T11:00:00Z",
                    "subject": "j.smith@northshire-camhs.example",
                    "organisation_id": "org-northshire-camhs",
                    "role": "receiver",
                    "action": "read_referral",
                    "referral_id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                }
            ]
        }
    )

    at: datetime = Field(description="When the personal data was read (ISO 8601 with a time zone).")
    subject: str = Field(description="Who read it: the subject of their bearer token.")
    organisation_id: str = Field(description="The organisation they read it for.")
    role: str = Field(description="The role they read it in.")
    action: str = Field(description="What they did: read_referral (read a referral with the child's details).")
    referral_id: str | None = Field(description="The referral whose data was read, if one.")


def organisation_out(o: Organisation) -> OrganisationOut:
    return OrganisationOut(id=o.id, version=o.version, name=o.name, kind=o.kind, area_id=o.area_id, trust_id=o.trust_id)


def service_out(s: Service, estimate: WaitEstimate | None = None, *, with_estimate: bool = False) -> ServiceOut:
    """``with_estimate``: the listing a school chooses from (a service without an estimate: not enough data yet)."""
    return ServiceOut.model_validate(
        {
            "id": s.id,
            "version": s.version,
            "organisation_id": s.organisation_id,
            "name": s.name,
            "needs": list(s.needs),
            "urgencies": list(s.urgencies),
            "clocks": list(s.clocks),
            "target_days": s.target_days,
            "active": s.active,
            "contact_phone": s.contact_phone,
            "contact_email": s.contact_email,
            "contact_url": s.contact_url,
            "wait_estimate": WaitEstimateOut.of(estimate) if with_estimate else None,
        }
    )
