"""A school's MIS export, as SIMS or Arbor write it, imports without reformatting; what cannot be read
unambiguously is still refused with its line and column. Expected values are worked out by hand here."""

from __future__ import annotations

from datetime import UTC, date, datetime

from referrals.entrypoints.csv_import import parse

HEADER = ("Service ID,Forename,Surname,Date of Birth,NHS Number,Primary Need,Urgency,Reason,Consent Given By,"
          "Consent Given At,Consent Scope,Referred At")  # fmt: skip


def rows_of(*lines: str) -> tuple[list, list]:  # type: ignore[type-arg]
    return parse("\n".join((HEADER, *lines)).encode())


def test_day_first_dates_uk_local_times_and_codes_in_any_case_are_read() -> None:
    rows, errors = rows_of(
        "svc-camhs-core,Sam,Taylor,12/03/2016,9434765919,semh,Very urgent,Anxiety,Parent,05/01/2026,CAMHS,"
        "06/01/2026 14:30",
        "svc-camhs-core,Ada,Lee,01.09.2015,9434765870,SpLD,Routine,Reading,Carer,2026-01-05,CAMHS,15-07-2025 09:05",
    )
    assert errors == []
    (_, first), (_, second) = rows
    assert first.child.date_of_birth == date(2016, 3, 12)
    assert first.primary_need == "SEMH" and first.urgency == "very_urgent" and first.consent.given_by == "parent"
    # January: GMT, so 14:30 in London is 14:30 UTC; a date alone is midnight in London.
    assert first.referred_at == datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    assert first.consent.given_at == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert second.child.date_of_birth == date(2015, 9, 1) and second.primary_need == "SpLD"
    # July: BST (UTC+1), so 09:05 in London is 08:05 UTC.
    assert second.referred_at == datetime(2025, 7, 15, 8, 5, tzinfo=UTC)


def test_what_cannot_be_read_unambiguously_is_refused_in_its_column() -> None:
    rows, errors = rows_of(
        "svc-camhs-core,Sam,Taylor,31/02/2016,9434765919,SEMH,routine,Anxiety,parent,05/01/2026,CAMHS,06/01/2026",
        "svc-camhs-core,Sam,Taylor,12/03/16,9434765919,SEMH,routine,Anxiety,parent,05/01/2026,CAMHS,06/01/2026",
        "svc-camhs-core,Sam,Taylor,12/03/2016,9434765919,SEMH,routine,Anxiety,guardian,05/01/2026,CAMHS,25:00",
    )
    assert rows == []
    assert [(e.line, e.column) for e in errors] == [
        (2, "date_of_birth"), (3, "date_of_birth"), (4, "consent_given_by"), (4, "referred_at"),
    ]  # fmt: skip


def test_iso_forms_with_offsets_are_unchanged() -> None:
    rows, errors = rows_of(
        "svc-camhs-core,Sam,Taylor,2016-03-12,9434765919,SEMH,routine,Anxiety,parent,2026-01-05T10:00:00+00:00,"
        "CAMHS,2026-07-06T10:00:00-04:00"
    )
    assert errors == []
    assert rows[0][1].referred_at == datetime(2026, 7, 6, 14, 0, tzinfo=UTC)


def test_the_consent_scope_columns_are_optional_lists_of_directory_ids() -> None:
    header = HEADER + ",Consent Scope Service IDs,consent_scope_organisation_ids"
    rows, errors = parse(
        "\n".join(
            (
                header,
                "svc-camhs-core,Sam,Taylor,12/03/2016,9434765919,SEMH,routine,Anxiety,parent,05/01/2026,CAMHS,"
                "06/01/2026,svc-camhs-core; svc-ehc-assessment,org-northshire-la",
                "svc-camhs-core,Ada,Lee,01/09/2015,9434765870,SEMH,routine,Anxiety,parent,05/01/2026,CAMHS,06/01/2026,,",
                "svc-camhs-core,Bo,Lee,01/09/2015,4010232137,SEMH,routine,Anxiety,parent,05/01/2026,CAMHS,06/01/2026,"
                "SVC CAMHS,",
            )
        ).encode()
    )
    (_, listed), (_, plain) = rows
    assert listed.consent.given().scope is not None
    assert (listed.consent.scope_service_ids, listed.consent.scope_organisation_ids) == (
        ["svc-camhs-core", "svc-ehc-assessment"],
        ["org-northshire-la"],
    )
    assert plain.consent.given().scope is None  # neither: the referral's own service
    assert {(e.line, e.column) for e in errors} == {(4, "consent_scope_service_ids")}
