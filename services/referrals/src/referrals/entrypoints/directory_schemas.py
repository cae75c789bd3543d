"""Request and response bodies of the directory and audit API (v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, Text


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    kind: OrganisationKind
    area_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="Local authority area.")
    trust_id: str | None = Field(
        None, max_length=64, pattern=IDENTIFIER_PATTERN, description="The trust a school belongs to."
    )


class OrganisationOut(OrganisationIn):
    id: str
    version: int


class ServiceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": "org-northshire-camhs",
                    "name": "CAMHS neurodevelopmental",
                    "needs": ["ASD", "SEMH"],
                    "urgencies": ["routine"],
                    "clocks": ["service_target"],
                    "target_days": 126,
                }
            ]
        },
    )

    organisation_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)
    name: Text = Field(min_length=1, max_length=200)
    needs: list[NeedCode] = Field(min_length=1)
    urgencies: list[Urgency] = Field(min_length=1)
    clocks: list[Clock] = Field(default_factory=list)
    target_days: int | None = Field(None, ge=1, le=3650, description="Target of the service_target clock.")
    active: bool = True


class ServiceOut(ServiceIn):
    id: str
    version: int


class AuditEntry(BaseModel):
    at: datetime
    subject: str
    organisation_id: str
    role: str
    action: str
    referral_id: str | None


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
        }
    )
