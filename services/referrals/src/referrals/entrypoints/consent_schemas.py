"""Request and response bodies of the consent routes (issue 17)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from referrals.domain.consent import (
    ConsentAction,
    ConsentGiver,
    ConsentRecord,
    ConsentRecordOf,
    ConsentStatus,
    RecordedVia,
    allowed_actions,
)
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral
from referrals.entrypoints.schemas import PastInstant, ScopeIds, Text, scope_of
from referrals.service_layer.consent import ConsentChange


class ConsentActionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "change",
                    "given_by": "parent",
                    "scope_service_ids": ["svc-camhs-core", "svc-ehc-assessment"],
                    "note": "Happy for the local authority to see it for the EHC needs assessment.",
                    "occurred_at": "2026-11-20T15:00:00Z",
                },
                {"action": "withdraw", "given_by": "parent", "note": "Family no longer wants the referral shared."},
                {"action": "give", "given_by": "young_person", "scope_organisation_ids": ["org-northshire-camhs"]},
            ]
        },
    )

    action: ConsentAction = Field(
        description="give (consent again after a withdrawal, only while the referral is open), change (a new scope "
        "or a new giver, while consent is given) or withdraw (while consent is given). Any other move is a 409."
    )
    given_by: ConsentGiver = Field(
        description="Who gives, changes or withdraws consent: a parent, a carer, the young person (only if 16 or "
        "over on `occurred_at`, else a 422 with rule young_person_16_or_over), or the local authority."
    )
    scope_service_ids: ScopeIds | None = Field(
        None,
        description="give, change: services (directory ids) that may receive the referral. The new scope is "
        "exactly what you send (a list left out is empty; the referral's own service is always in scope while "
        "consent is given). With neither this nor `scope_organisation_ids`: for give, the referral's own service; "
        "for change, the scope in force (a new giver only). Not with withdraw.",
    )
    scope_organisation_ids: ScopeIds | None = Field(
        None,
        description="give, change: organisations (directory ids) any of whose services may receive the referral. "
        "Not with withdraw.",
    )
    note: Text | None = Field(
        None,
        max_length=500,
        description="What the family said, in their words. Seen only by the referrer and the receiver; it never "
        "leaves this service.",
    )
    occurred_at: PastInstant | None = Field(
        None,
        description="When the family gave, changed or withdrew consent, if earlier than now (ISO 8601 with a time "
        "zone); not in the future, not before the consent event before it. Default now.",
    )

    def change(self, referral_id: str) -> ConsentChange:
        return ConsentChange(
            referral_id=referral_id,
            given_by=self.given_by,
            scope=scope_of(self.scope_service_ids, self.scope_organisation_ids),
            note=self.note,
            occurred_at=self.occurred_at,
        )


_EVENT_EXAMPLE: JsonDict = {
    "consent_version": 2,
    "status": "changed",
    "given_by": "parent",
    "scope_service_ids": ["svc-camhs-core", "svc-ehc-assessment"],
    "scope_organisation_ids": [],
    "note": "Happy for the local authority to see it for the EHC needs assessment.",
    "occurred_at": "2026-11-20T15:00:00Z",
    "recorded_at": "2026-11-20T15:02:11Z",
    "recorded_by_org_id": "org-oakfield-primary",
    "recorded_via": "api",
}


class ConsentEventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})

    consent_version: int = Field(description="1 at submission, then +1 per consent event.")
    status: ConsentStatus = Field(description="given, changed or withdrawn.")
    given_by: ConsentGiver = Field(description="Who gave, changed or withdrew consent, as a role.")
    scope_service_ids: list[str] = Field(description="Services that may receive the referral; empty once withdrawn.")
    scope_organisation_ids: list[str] = Field(
        description="Organisations any of whose services may receive the referral; empty once withdrawn."
    )
    note: str | None = Field(description="What the family said (their words); never leaves this service.")
    occurred_at: datetime = Field(description="When it happened (business time, ISO 8601 with a time zone).")
    recorded_at: datetime = Field(description="When this service recorded it.")
    recorded_by_org_id: str | None = Field(
        description="The organisation that recorded it (directory id); null when the family did, in the family view."
    )
    recorded_via: RecordedVia = Field(description="api, import (a CSV import) or family_view.")

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentEventOut:
        return cls(
            consent_version=record.version,
            status=record.status,
            given_by=record.given_by,
            scope_service_ids=list(record.scope.service_ids),
            scope_organisation_ids=list(record.scope.organisation_ids),
            note=record.note,
            occurred_at=record.occurred_at,
            recorded_at=record.recorded_at,
            recorded_by_org_id=record.recorded_by_org_id,
            recorded_via=record.recorded_via,
        )


class ConsentHistoryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referral_id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                    "referral_status": "accepted",
                    "referral_version": 3,
                    "status": "changed",
                    "allowed_actions": ["change", "withdraw"],
                    "events": [_EVENT_EXAMPLE],
                }
            ]
        }
    )

    referral_id: str = Field(description="The referral's id.")
    referral_status: Status = Field(
        description="The referral's status now: `withdrawn` if a withdrawal of consent before acceptance ended it."
    )
    referral_version: int = Field(description="The referral's version (its ETag); consent events do not change it.")
    status: ConsentStatus | None = Field(description="The status of the consent in force (the newest event).")
    allowed_actions: list[ConsentAction] = Field(description="The actions that may be posted next.")
    events: list[ConsentEventOut] = Field(description="Every consent event, oldest first; the last is in force.")

    @classmethod
    def of(cls, referral: Referral, consent: ConsentRecordOf) -> ConsentHistoryOut:
        return cls(
            referral_id=referral.id,
            referral_status=referral.status,
            referral_version=referral.version,
            status=consent.status,
            allowed_actions=sorted(allowed_actions(consent.status, referral_open=referral.is_open)),
            events=[ConsentEventOut.of(r) for r in consent.records],
        )
