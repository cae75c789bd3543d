"""CSV import of an existing waiting list, with historical business times.

Columns (header row required, order free, UTF-8, comma-separated). The UK forms school MIS exports write are
read too: day-first dates, UK local times, codes in any case and the usual MIS column names (see
``csv_forms``):

| column | required | rule |
|---|---|---|
| service_id | yes | a service in the directory |
| referrer_org_id | receivers only | the organisation that referred (a school importing uses itself) |
| nhs_number / upn | one of them | NHS number (ASCII digits) with its modulus 11 check, or a UPN |
| given_name, family_name | yes | 1-200 characters |
| date_of_birth | yes | YYYY-MM-DD, from 1990-01-01, within the past 26 years, not in the future |
| primary_need | yes | DfE code: SpLD, MLD, SLD, PMLD, SEMH, SLCN, HI, VI, MSI, PD, ASD, OTH |
| secondary_need | no | DfE code |
| urgency | no | routine (default), urgent, very_urgent |
| reason | yes | why the child was referred |
| consent_given_by | yes | parent, carer, young_person, local_authority |
| consent_given_at | yes | ISO 8601 date-time with offset |
| consent_scope | yes | what the consent covers, in the family's words (kept as the consent's note) |
| consent_scope_service_ids | no | services that may receive the referral (directory ids, separated by spaces or `;`); with neither this nor the next, only the service referred to |
| consent_scope_organisation_ids | no | organisations any of whose services may receive it (directory ids, separated by spaces or `;`) |
| referred_at | yes | ISO 8601 date-time with offset, from 2000-01-01, not in the future |
| status | no | submitted (default); a receiver importing its own service's list also acknowledged, accepted, scheduled, on_hold |
| accepted_at | for accepted, scheduled, on_hold | when the referral was accepted |
| status_at | for acknowledged, scheduled, on_hold | when the referral reached its current status |
| appointment_at | for scheduled | the booked appointment, at most two years ahead |
| hold_reason, expected_resume | for on_hold | a hold reason code and a date, at most two years ahead |

Every date-time needs an offset and none may be before 2000-01-01. An import records only the moves the
caller's role may make in a live move (and consent version 1, `given`, as a submission does): a referrer (a school importing what it sent) imports `submitted`
referrals only; the moves a receiver makes come in through the receiver's own import of its waiting list.
History names the importing organisation as the one that recorded each move.

The whole file is validated before anything is written; every bad cell is reported
with its line, column and rule. A clean file is imported in one transaction, and each
referral's events carry the original business times.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from referrals.domain.codes import HoldReason, NeedCode, Urgency
from referrals.domain.lifecycle import Status
from referrals.entrypoints import csv_forms
from referrals.entrypoints.schemas import (
    ChildIn,
    ConsentIn,
    Identifier,
    PastInstant,
    PlannedDate,
    PlannedInstant,
    Text,
)

MAX_ROWS = 10_000
DESCRIPTION = f"""{__doc__}
Hold reason codes (hold_reason): {", ".join(HoldReason)}.
"""
EXAMPLE = (
    "service_id,nhs_number,given_name,family_name,date_of_birth,primary_need,urgency,reason,consent_given_by,"
    "consent_given_at,consent_scope,referred_at\n"
    "svc-camhs-core,9434765919,Sam,Taylor,12/04/2015,SEMH,routine,Persistent anxiety affecting attendance,parent,"
    "2026-11-01T10:00:00Z,Referral to CAMHS,2026-11-02T09:30:00Z\n"
)
IMPORTABLE_STATUSES = (Status.SUBMITTED, Status.ACKNOWLEDGED, Status.ACCEPTED, Status.SCHEDULED, Status.ON_HOLD)
COLUMNS = (
    "service_id", "referrer_org_id", "nhs_number", "upn", "given_name", "family_name", "date_of_birth",
    "primary_need", "secondary_need", "urgency", "reason", "consent_given_by", "consent_given_at", "consent_scope",
    "consent_scope_service_ids", "consent_scope_organisation_ids", "referred_at", "status", "accepted_at", "status_at", "appointment_at", "hold_reason", "expected_resume",
)  # fmt: skip
_CHILD = {"given_name", "family_name", "date_of_birth", "nhs_number", "upn"}
_CONSENT = {
    "consent_given_by": "given_by",
    "consent_given_at": "given_at",
    "consent_scope": "scope",
    "consent_scope_service_ids": "scope_service_ids",
    "consent_scope_organisation_ids": "scope_organisation_ids",
}
_ID_LISTS = {"consent_scope_service_ids", "consent_scope_organisation_ids"}


class ImportRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: Identifier
    referrer_org_id: Identifier | None = None
    child: ChildIn
    primary_need: NeedCode
    secondary_need: NeedCode | None = None
    urgency: Urgency = Urgency.ROUTINE
    reason: Text = Field(min_length=1, max_length=4000)
    consent: ConsentIn
    referred_at: PastInstant
    status: str = "submitted"
    accepted_at: PastInstant | None = None
    status_at: PastInstant | None = None
    appointment_at: PlannedInstant | None = None
    hold_reason: HoldReason | None = None
    expected_resume: PlannedDate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ImportRow:
        if self.status not in IMPORTABLE_STATUSES:
            raise ValueError(f"status: must be one of {', '.join(IMPORTABLE_STATUSES)}")
        needs = {
            "acknowledged": ("status_at",),
            "accepted": ("accepted_at",),
            "scheduled": ("accepted_at", "status_at", "appointment_at"),
            "on_hold": ("accepted_at", "status_at", "hold_reason", "expected_resume"),
        }.get(self.status, ())
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required when status is {self.status}")
        times = [t for t in (self.referred_at, self.accepted_at, self.status_at) if t is not None]
        if times != sorted(times):
            raise ValueError("status_at: referred_at, accepted_at and status_at must be in time order")
        return self


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    rule: str
    message: str


class CsvRejected(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problems")
        self.errors = errors


def parse(content: bytes) -> tuple[list[tuple[int, ImportRow]], list[RowError]]:
    """The valid rows and a problem for every bad cell; a file that cannot be read at all raises CsvRejected."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvRejected([RowError(1, "", "utf8", "the file is not UTF-8")]) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [csv_forms.header(name) for name in reader.fieldnames or []]
        reader.fieldnames = header
    except csv.Error as exc:
        raise CsvRejected([RowError(1, "", "csv", str(exc))]) from exc
    unknown = [c for c in header if c not in COLUMNS]
    errors = [RowError(1, c, "known_column", f"unknown column {c!r}") for c in unknown]
    for required in ("service_id", "given_name", "family_name", "date_of_birth", "primary_need", "reason",
                     "consent_given_by", "consent_given_at", "consent_scope", "referred_at"):  # fmt: skip
        if required not in header:
            errors.append(RowError(1, required, "required_column", f"missing column {required!r}"))
    if errors:
        raise CsvRejected(errors)
    rows: list[tuple[int, ImportRow]] = []
    try:
        for record in reader:
            line = reader.line_num
            if len(rows) >= MAX_ROWS:
                raise CsvRejected([RowError(line, "", "max_rows", f"at most {MAX_ROWS} rows per file")])
            if None in record:
                errors.append(RowError(line, "", "column_count", "more cells than columns"))
                continue
            try:
                rows.append((line, ImportRow.model_validate(_nest(record))))
            except ValidationError as exc:
                errors.extend(_row_errors(line, exc))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "", "csv", str(exc)))
    if not rows and not errors:
        raise CsvRejected([RowError(1, "", "not_empty", "the file has no rows")])
    return rows, errors


def _nest(record: dict[str, Any]) -> dict[str, Any]:
    flat = {
        k: (csv_forms.canonical(k, v.strip()) if isinstance(v, str) else v)
        for k, v in record.items()
        if v not in (None, "")
    }
    nested: dict[str, Any] = {k: v for k, v in flat.items() if k not in _CHILD and k not in _CONSENT}
    nested["child"] = {k: v for k, v in flat.items() if k in _CHILD}
    nested["consent"] = {
        _CONSENT[k]: (re.split(r"[;\s]+", v.strip(" ;")) if k in _ID_LISTS and isinstance(v, str) else v)
        for k, v in flat.items()
        if k in _CONSENT
    }
    return nested


def _row_errors(line: int, exc: ValidationError) -> list[RowError]:
    found = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ())]
        message = str(error.get("msg", ""))
        column = loc[-1] if loc else ""
        if loc[:1] == ["consent"] and len(loc) > 1:
            column = "consent_" + loc[1]
        if not loc or loc == ["child"]:
            # A model-level rule; its message starts with the column it concerns.
            text = message.removeprefix("Value error, ")
            column, _, rest = text.partition(": ")
            if not rest:
                column, rest = ("nhs_number" if loc == ["child"] else ""), text
            message = rest
        found.append(RowError(line, column, str(error.get("type", "invalid")), message))
    return found
