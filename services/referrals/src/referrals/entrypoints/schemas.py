"""Request and response bodies of the referrals API (v1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from referrals.domain.child import is_valid_nhs_number, is_valid_upn
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral

Urgency = Literal["routine", "urgent", "very_urgent", "emergency"]


class ReferralCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "service_id": "svc-camhs-core",
                    "nhs_number": "9434765919",
                    "urgency": "routine",
                    "referred_at": "2026-11-02T09:30:00Z",
                }
            ]
        },
    )

    service_id: str = Field(min_length=1, max_length=64, description="Receiving service, from the directory.")
    nhs_number: str | None = Field(None, description="NHS number (10 digits, modulus 11 check).")
    upn: str | None = Field(None, description="Unique pupil number, when the NHS number is not known.")
    urgency: Urgency = "routine"
    referred_at: AwareDatetime | None = Field(None, description="Business time of the referral; not in the future.")

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_nhs_number(value):
            raise ValueError("not a valid NHS number (10 digits with a modulus 11 check digit)")
        return value

    @field_validator("upn")
    @classmethod
    def _upn(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_upn(value):
            raise ValueError("not a valid unique pupil number")
        return value

    @field_validator("referred_at")
    @classmethod
    def _not_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(UTC):
            raise ValueError("must not be in the future")
        return value

    @property
    def child_identifier(self) -> str | None:
        return self.nhs_number or self.upn


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    occurred_at: AwareDatetime | None = Field(None, description="Business time of the move; defaults to now.")
    reason_code: str | None = Field(None, max_length=64)
    outcome_code: str | None = Field(None, max_length=64)


class ReferralOut(BaseModel):
    id: str
    status: Status
    version: int
    service_id: str
    referrer_org_id: str
    receiving_org_id: str
    urgency: str
    referred_at: datetime
    allowed_moves: list[Status]

    @classmethod
    def of(cls, referral: Referral) -> ReferralOut:
        return cls(
            id=referral.id,
            status=referral.status,
            version=referral.version,
            service_id=referral.service_id,
            referrer_org_id=referral.referrer_org_id,
            receiving_org_id=referral.receiving_org_id,
            urgency=referral.urgency,
            referred_at=referral.referred_at,
            allowed_moves=sorted(referral.allowed_moves()),
        )
