"""Request and response bodies of erasure and subject access (v1)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from referrals.domain.consent import ConsentRecord
from referrals.domain.family import FamilyLink
from referrals.domain.privacy import PersonRecord, SubjectRecord, Tombstone
from referrals.entrypoints.directory_schemas import AuditEntry
from referrals.entrypoints.schemas import HistoryEntry, ReferralOut, checked_nhs_number, checked_upn

_ERASED_AT = "2026-12-01T09:00:00Z"


class ErasureOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referral_id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                    "erased_at": _ERASED_AT,
                    "erased_by_org_id": "org-northshire-camhs",
                }
            ]
        }
    )

    referral_id: str = Field(description="The referral whose child's personal data was erased.")
    erased_at: datetime = Field(
        description="When it was erased (ISO 8601 with a time zone); the first erasure's time if it was already."
    )
    erased_by_org_id: str = Field(description="The organisation that erased it (directory id).")

    @classmethod
    def of(cls, referral_id: str, tombstone: Tombstone) -> ErasureOut:
        return cls(referral_id=referral_id, erased_at=tombstone.erased_at, erased_by_org_id=tombstone.erased_by_org_id)


class SubjectAccessIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"nhs_number": "9434765919"}, {"upn": "A123456789012"}]}
    )

    nhs_number: str | None = Field(
        None,
        max_length=20,
        description="The child's NHS number: 10 ASCII digits (spaces allowed) with a modulus 11 check digit. Give "
        "this, `upn`, or both.",
    )
    upn: str | None = Field(
        None, max_length=20, description="The child's unique pupil number (ASCII). Give this, `nhs_number`, or both."
    )

    _nhs = field_validator("nhs_number")(checked_nhs_number)
    _upn = field_validator("upn")(checked_upn)

    @model_validator(mode="after")
    def _identified(self) -> SubjectAccessIn:
        if not (self.nhs_number or self.upn):
            raise ValueError("give the child's nhs_number or upn")
        return self


class PersonalDataOut(BaseModel):
    given_name: str | None = Field(description="The child's first name; null once erased.")
    family_name: str | None = Field(description="The child's last name; null once erased.")
    date_of_birth: date | None = Field(description="The child's date of birth, YYYY-MM-DD; null once erased.")
    nhs_number: str | None = Field(description="The child's NHS number; null if not given or erased.")
    upn: str | None = Field(description="The child's unique pupil number; null if not given or erased.")
    reason: str | None = Field(description="Why the child was referred, as the referrer wrote it; null once erased.")
    contact_email: str | None = Field(description="The family's email address for this referral, if any.")
    contact_phone: str | None = Field(description="The family's phone number for this referral, if any.")
    contact_preference: str | None = Field(description="How the family prefers to be contacted, if they said.")
    erased_at: datetime | None = Field(description="When this data was erased (the tombstone); null if it was not.")
    erased_by_org_id: str | None = Field(description="The organisation that erased it; null if it was not erased.")

    @classmethod
    def of(cls, p: PersonRecord) -> PersonalDataOut:
        return cls.model_validate(p, from_attributes=True)


class ConsentHeldOut(BaseModel):
    version: int = Field(description="The consent version: 1 for the consent the referral was made with, then +1.")
    status: str = Field(description="What happened: given, changed or withdrawn.")
    given_by: str = Field(description="Who gave, changed or withdrew it, as a role (parent, carer, ...).")
    scope_service_ids: list[str] = Field(description="Services that may receive the referral (directory ids).")
    scope_organisation_ids: list[str] = Field(
        description="Organisations any of whose services may receive the referral (directory ids)."
    )
    note: str | None = Field(description="What the consent covers, in the family's words; null once erased.")
    recorded_by_org_id: str | None = Field(
        description="The organisation that recorded it; null when the family did, on the family view."
    )
    recorded_via: str = Field(description="How it was recorded: api, import or family_view.")
    occurred_at: datetime = Field(description="When consent was given, changed or withdrawn (business time).")
    recorded_at: datetime = Field(description="When this service recorded it.")

    @classmethod
    def of(cls, c: ConsentRecord) -> ConsentHeldOut:
        return cls(
            version=c.version,
            status=c.status.value,
            given_by=c.given_by.value,
            scope_service_ids=list(c.scope.service_ids),
            scope_organisation_ids=list(c.scope.organisation_ids),
            note=c.note,
            recorded_by_org_id=c.recorded_by_org_id,
            recorded_via=str(c.recorded_via),
            occurred_at=c.occurred_at,
            recorded_at=c.recorded_at,
        )


class FamilyLinkHeldOut(BaseModel):
    id: str = Field(description="The link's id (never its token, which only the family's email carried).")
    issued_by_org_id: str = Field(description="The organisation that issued the link (directory id).")
    created_at: datetime = Field(description="When the link was issued.")
    expires_at: datetime = Field(description="When the link stops working.")
    revoked_at: datetime | None = Field(description="When the link was revoked; null if it was not.")
    last_used_at: datetime | None = Field(description="When the family last opened the link; null if never.")

    @classmethod
    def of(cls, link: FamilyLink) -> FamilyLinkHeldOut:
        return cls(
            id=link.id,
            issued_by_org_id=link.issued_by_org_id,
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            last_used_at=link.last_used_at,
        )


class SubjectReferralOut(BaseModel):
    referral: ReferralOut = Field(description="The referral: its service, status, codes and dates.")
    personal_data: PersonalDataOut | None = Field(
        description="The child's personal data and the family's contact details held for this referral."
    )
    history: list[HistoryEntry] = Field(description="Every change of the referral, oldest first.")
    consents: list[ConsentHeldOut] = Field(description="Every consent record of the referral, oldest first.")
    family_links: list[FamilyLinkHeldOut] = Field(description="Links to the family view issued on this referral.")
    audit_log: list[AuditEntry] = Field(
        description="Every audit entry about this referral, oldest first: who read the child's data (and erased "
        "or exported it), when, for which organisation."
    )

    @classmethod
    def of(cls, r: SubjectRecord) -> SubjectReferralOut:
        return cls(
            referral=ReferralOut.of(r.referral),
            personal_data=PersonalDataOut.of(r.person) if r.person is not None else None,
            history=[HistoryEntry.of(h) for h in r.history],
            consents=[ConsentHeldOut.of(c) for c in r.consents],
            family_links=[FamilyLinkHeldOut.of(link) for link in r.family_links],
            audit_log=[AuditEntry.model_validate(e, from_attributes=True) for e in r.audit_log],
        )


_EXPORT_EXAMPLE: JsonDict = {
    "organisation_id": "org-northshire-camhs",
    "exported_at": "2026-12-02T10:00:00Z",
    "referrals": [
        {
            "referral": {
                "id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                "status": "completed",
                "version": 4,
                "service_id": "svc-camhs-core",
                "referrer_org_id": "org-oakfield-primary",
                "receiving_org_id": "org-northshire-camhs",
                "urgency": "routine",
                "primary_need": "SEMH",
                "secondary_need": None,
                "referred_at": "2026-11-02T09:30:00Z",
                "status_at": "2026-11-30T11:00:00Z",
                "linked_from_id": None,
                "linked_to_id": None,
                "outcome_code": "support_completed",
                "allowed_moves": ["entered_in_error"],
                "parallel_referrals": [],
            },
            "personal_data": {
                "given_name": "Sam",
                "family_name": "Taylor",
                "date_of_birth": "2015-04-12",
                "nhs_number": "9434765919",
                "upn": None,
                "reason": "Persistent anxiety affecting attendance since spring term.",
                "contact_email": "parent@example.org",
                "contact_phone": None,
                "contact_preference": "email",
                "erased_at": None,
                "erased_by_org_id": None,
            },
            "history": [],
            "consents": [
                {
                    "version": 1,
                    "status": "given",
                    "given_by": "parent",
                    "scope_service_ids": ["svc-camhs-core"],
                    "scope_organisation_ids": [],
                    "note": "Referral to CAMHS",
                    "recorded_by_org_id": "org-oakfield-primary",
                    "recorded_via": "api",
                    "occurred_at": "2026-11-01T10:00:00Z",
                    "recorded_at": "2026-11-02T09:30:01Z",
                }
            ],
            "family_links": [],
            "audit_log": [
                {
                    "at": "2026-11-09T11:00:00Z",
                    "subject": "j.smith@northshire-camhs.example",
                    "organisation_id": "org-northshire-camhs",
                    "role": "receiver",
                    "action": "read_referral",
                    "referral_id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                }
            ],
        }
    ],
}


class SubjectAccessOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXPORT_EXAMPLE]})

    organisation_id: str = Field(description="The organisation the export answers for (the caller's).")
    exported_at: datetime = Field(description="When the export was made (ISO 8601 with a time zone).")
    referrals: list[SubjectReferralOut] = Field(
        description="Each referral of the child your organisation sent (role `referrer`) or receives (role "
        "`receiver`), oldest first; empty if there is none, whoever else may hold one."
    )
