"""Request and response bodies of the directory and audit API (v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, Text


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
        json_schema_extra={"examples": [{"id": "svc-camhs-neuro", "version": 1, **_SERVICE_EXAMPLE, "active": True}]}
    )

    id: str = Field(description="The service's directory id.")
    version: int = Field(description="Goes up by one with every change to the entry.")


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


def service_out(s: Service) -> ServiceOut:
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
        }
    )
