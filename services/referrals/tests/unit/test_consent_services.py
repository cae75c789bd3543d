"""The consent use cases over the in-memory unit of work: giving, changing and withdrawing consent, the referral a
withdrawal before acceptance ends, the scope of hand-offs and re-referrals, the audited history, and the events in
their order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from referrals.domain.audit import AuditAction
from referrals.domain.child import PersonalDetails
from referrals.domain.consent import ConsentGiver, ConsentScope, IllegalConsentMove, OutsideConsent
from referrals.domain.lifecycle import Status
from referrals.domain.model import MissingDetail, MoveDetails
from referrals.service_layer import importing
from referrals.service_layer.callers import Caller, FamilyCaller
from referrals.service_layer.consent import (
    ConsentChange,
    GivenConsent,
    change_consent,
    consent_history,
    give_consent,
    withdraw_consent,
)
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.idempotency import Idempotency
from referrals.service_layer.submission import SubmitReferral, submit_referral

from .fakes import FakeUnitOfWork
from .test_services import (
    CAMHS,
    CONSENTED,
    LA,
    OTHER_SCHOOL,
    RECEIVER,
    REFERRER,
    SCHOOL,
    move,
    person,
    row,
)
from .test_services import uow as uow  # the fixture: the seeded directory

PARENT = ConsentGiver.PARENT
SUBMITTED, GIVEN, CHANGED, WITHDRAWN = (
    "uk.send.referral.submitted.v1",
    "uk.send.referral.consent.given.v1",
    "uk.send.referral.consent.changed.v1",
    "uk.send.referral.consent.withdrawn.v1",
)


async def submit(
    uow: FakeUnitOfWork,
    scope: ConsentScope | None = None,
    *,
    key: str = "k-1",
    born: date = date(2015, 4, 12),
    by: ConsentGiver = PARENT,
) -> str:
    p = person()
    details = PersonalDetails(p.given_name, p.family_name, born, p.nhs_number, p.upn, p.reason)
    response = await submit_referral(
        SubmitReferral(
            REFERRER,
            "svc-camhs",
            details,
            GivenConsent(by, CONSENTED, scope, "ok to share"),
            "routine",
            "SEMH",
            None,
            referred_at=CONSENTED,
        ),
        uow,
        b"test-key",
        idempotency=Idempotency(key, key),
        render=lambda r, _estimate: {"id": r.id},
    )
    referral_id: str = response.body["id"]
    uow.committed.published.clear()
    return referral_id


def published(uow: FakeUnitOfWork) -> list[tuple[str, str | None, object]]:
    """(type, status or consent status, reason code or consent version) of what was published, in order."""
    found = []
    for event, _ in uow.committed.published:
        data = event.data
        if "consent_status" in data:
            found.append((event.type, data["consent_status"], data["consent_version"]))
        else:
            found.append((event.type, data["status"], data.get("reason_code")))
    return found


def later(hours: int = 1) -> datetime:
    return CONSENTED + timedelta(hours=hours)


async def test_a_submission_records_consent_version_one_right_after_submitted(uow: FakeUnitOfWork) -> None:
    await submit_referral(
        SubmitReferral(REFERRER, "svc-camhs", person(), GivenConsent(PARENT, CONSENTED), "routine", "SEMH", None),
        uow,
        b"test-key",
        idempotency=Idempotency("k", "h"),
        render=lambda r, _estimate: {"id": r.id, "version": r.version},
    )
    [(referral_id, records)] = uow.committed.consents.items()
    assert [(r.version, r.status, r.scope.service_ids, r.recorded_by_org_id) for r in records] == [
        (1, "given", ("svc-camhs",), SCHOOL)
    ]
    assert published(uow) == [(SUBMITTED, "submitted", None), (GIVEN, "given", 1)]
    assert uow.committed.referrals[referral_id].version == 1  # consent leaves the referral's version alone


async def test_a_young_person_under_16_cannot_consent_to_their_own_referral(uow: FakeUnitOfWork) -> None:
    with pytest.raises(MissingDetail) as refused:
        await submit(uow, by=ConsentGiver.YOUNG_PERSON)
    assert (refused.value.field, refused.value.rule) == ("consent.given_by", "young_person_16_or_over")
    assert uow.committed.referrals == {}
    assert await submit(uow, by=ConsentGiver.YOUNG_PERSON, born=date(2009, 1, 2))


async def test_a_scope_naming_an_unknown_service_or_organisation_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(MissingDetail) as service:
        await submit(uow, ConsentScope(("svc-nowhere",), ()))
    assert (service.value.field, service.value.rule) == ("consent.scope_service_ids", "known_service")
    with pytest.raises(MissingDetail) as org:
        await submit(uow, ConsentScope((), ("org-nowhere",)))
    assert (org.value.field, org.value.rule) == ("consent.scope_organisation_ids", "known_organisation")
    assert uow.committed.referrals == {}


async def test_withdrawal_before_acceptance_withdraws_the_referral_after_the_consent_event(
    uow: FakeUnitOfWork,
) -> None:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.ACKNOWLEDGED, version=1, occurred_at=later(1))
    uow.committed.published.clear()
    done = await withdraw_consent(ConsentChange(referral_id, PARENT, occurred_at=later(2)), RECEIVER, uow)
    assert (done.referral.status, done.recorded.status, done.recorded.version) == (Status.WITHDRAWN, "withdrawn", 2)
    assert published(uow) == [
        (WITHDRAWN, "withdrawn", 2),
        ("uk.send.referral.withdrawn.v1", "withdrawn", "consent_withdrawn"),
    ]
    stored = uow.committed.referrals[referral_id]
    assert (stored.status, stored.version, stored.last_details.reason_code) == (
        Status.WITHDRAWN,
        3,
        "consent_withdrawn",
    )
    last = uow.committed.history[-1]
    assert (last.status, last.actor_org_id, last.occurred_at) == (Status.WITHDRAWN, CAMHS, later(2))


async def test_withdrawal_on_hold_from_acknowledged_withdraws_the_referral_too(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.ACKNOWLEDGED, version=1, occurred_at=later(1))
    hold = MoveDetails(reason_code="awaiting_information", expected_resume=date(2026, 3, 1))
    await move(uow, referral_id, Status.ON_HOLD, version=2, occurred_at=later(2), details=hold)
    # Consent withdrawn (business time) before the hold was recorded: the referral ends at its latest move's time.
    done = await withdraw_consent(ConsentChange(referral_id, PARENT, occurred_at=later(1)), REFERRER, uow)
    assert done.referral.status is Status.WITHDRAWN
    assert uow.committed.history[-1].occurred_at == later(2)


async def test_withdrawal_after_acceptance_leaves_the_referral_open(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.ACCEPTED, version=1, occurred_at=later(1))
    uow.committed.published.clear()
    done = await withdraw_consent(ConsentChange(referral_id, PARENT, occurred_at=later(2)), REFERRER, uow)
    assert (done.referral.status, done.referral.version) == (Status.ACCEPTED, 2)
    assert published(uow) == [(WITHDRAWN, "withdrawn", 2)]
    # Given again while the referral is open; a second withdrawal; never given again once the referral closed.
    await give_consent(ConsentChange(referral_id, ConsentGiver.CARER, occurred_at=later(3)), RECEIVER, uow)
    await withdraw_consent(ConsentChange(referral_id, PARENT, occurred_at=later(4)), RECEIVER, uow)
    await move(uow, referral_id, Status.COMPLETED, version=2, details=MoveDetails(outcome_code="discharged"))
    with pytest.raises(IllegalConsentMove) as refused:
        await give_consent(ConsentChange(referral_id, PARENT), RECEIVER, uow)
    assert refused.value.rule == "referral_open"
    statuses = [r.status.value for r in uow.committed.consents[referral_id]]
    assert statuses == ["given", "withdrawn", "given", "withdrawn"]
    assert [r.recorded_by_org_id for r in uow.committed.consents[referral_id]] == [SCHOOL, SCHOOL, CAMHS, CAMHS]


async def test_the_family_withdraws_through_its_link_for_its_own_child_only(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    child_ref = uow.committed.referrals[referral_id].child_ref
    with pytest.raises(NotFound):
        await withdraw_consent(ConsentChange(referral_id, PARENT), FamilyCaller("link-2", "f" * 32), uow)
    done = await withdraw_consent(ConsentChange(referral_id, PARENT), FamilyCaller("link-1", child_ref), uow)
    assert (done.recorded.recorded_via, done.recorded.recorded_by_org_id) == ("family_view", None)
    # The referral the family's withdrawal ends is recorded as the referrer's.
    assert (done.referral.status, uow.committed.history[-1].actor_org_id) == (Status.WITHDRAWN, SCHOOL)


async def test_only_the_referrals_readers_record_consent(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(NotFound):
        await withdraw_consent(ConsentChange(referral_id, PARENT), Caller(OTHER_SCHOOL, "referrer", "x"), uow)
    with pytest.raises(NotFound):
        await change_consent(ConsentChange(referral_id, PARENT), Caller(LA, "receiver", "x"), uow)
    with pytest.raises(NotYourReferral):
        await withdraw_consent(ConsentChange(referral_id, PARENT), Caller(CAMHS, "referrer", "x"), uow)
    with pytest.raises(NotFound):
        await withdraw_consent(ConsentChange("no-such-referral", PARENT), REFERRER, uow)
    assert [r.status.value for r in uow.committed.consents[referral_id]] == ["given"]
    assert uow.committed.published == []


async def test_a_change_needs_something_new_and_known_ids(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(MissingDetail) as same:
        await change_consent(ConsentChange(referral_id, PARENT, occurred_at=later()), REFERRER, uow)
    assert same.value.rule == "changes_something"
    with pytest.raises(MissingDetail) as unknown:
        await change_consent(ConsentChange(referral_id, PARENT, ConsentScope(("svc-x",), ())), REFERRER, uow)
    assert (unknown.value.field, unknown.value.rule) == ("scope_service_ids", "known_service")
    done = await change_consent(
        ConsentChange(referral_id, PARENT, ConsentScope((), (LA,)), "the EHC team too", later()), REFERRER, uow
    )
    assert (done.recorded.status, done.recorded.scope.organisation_ids, done.recorded.note) == (
        "changed",
        (LA,),
        "the EHC team too",
    )
    assert published(uow) == [(CHANGED, "changed", 2)]
    assert "the EHC team too" not in str(uow.committed.published[0][0].data)  # the note never leaves


async def test_a_hand_off_goes_only_within_consent_and_the_linked_referral_rests_on_it(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    handoff = MoveDetails(target_service_id="svc-ehc")
    with pytest.raises(OutsideConsent) as outside:
        await move(uow, referral_id, Status.HANDED_OFF, version=1, details=handoff)
    assert (outside.value.field, outside.value.rule) == ("target_service_id", "outside_consent_scope")
    await change_consent(
        ConsentChange(referral_id, PARENT, ConsentScope((), (LA,)), occurred_at=later()), REFERRER, uow
    )
    uow.committed.published.clear()
    await move(uow, referral_id, Status.HANDED_OFF, version=1, details=handoff)
    linked_id = uow.committed.referrals[referral_id].linked_to_id
    assert linked_id is not None
    [copied] = uow.committed.consents[linked_id]
    assert (copied.version, copied.status, copied.scope, copied.given_by) == (
        1,
        "given",
        ConsentScope((), (LA,)),
        PARENT,
    )
    mine = [(e.type, key) for e, key in uow.committed.published]
    assert mine.index((SUBMITTED, linked_id)) < mine.index((GIVEN, linked_id))


async def test_no_hand_off_or_re_referral_once_consent_is_withdrawn(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow, ConsentScope((), (LA,)))
    await move(uow, referral_id, Status.ACCEPTED, version=1, occurred_at=later(1))
    await withdraw_consent(ConsentChange(referral_id, PARENT, occurred_at=later(2)), RECEIVER, uow)
    with pytest.raises(OutsideConsent) as withdrawn:
        await move(uow, referral_id, Status.HANDED_OFF, version=2, details=MoveDetails(target_service_id="svc-ehc"))
    assert withdrawn.value.rule == "consent_withdrawn"
    assert uow.committed.referrals[referral_id].status is Status.ACCEPTED
    # Closing the referral needs no consent.
    await move(uow, referral_id, Status.COMPLETED, version=2, details=MoveDetails(outcome_code="discharged"))


async def test_a_rejection_re_refers_only_within_consent(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    details = MoveDetails(reason_code="outside_remit", explanation="Not ours.", rereferral_service_id="svc-ehc")
    with pytest.raises(OutsideConsent) as outside:
        await move(uow, referral_id, Status.REJECTED, version=1, details=details)
    assert (outside.value.field, outside.value.rule) == ("rereferral_service_id", "outside_consent_scope")
    signposted = MoveDetails(reason_code="outside_remit", explanation="Not ours.", signposted_service_id="svc-ehc")
    await move(uow, referral_id, Status.REJECTED, version=1, details=signposted)  # signposting shares nothing


async def test_reading_the_consent_history_is_audited(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await withdraw_consent(
        ConsentChange(referral_id, PARENT, note="changed their mind", occurred_at=later()), REFERRER, uow
    )
    referral, consent = await consent_history(referral_id, RECEIVER, uow)
    assert referral.status is Status.WITHDRAWN
    assert [(r.status.value, r.note) for r in consent.records] == [
        ("given", "ok to share"),
        ("withdrawn", "changed their mind"),
    ]
    assert [(e.organisation_id, e.action, e.referral_id) for e in uow.committed.audit] == [
        (CAMHS, AuditAction.READ_CONSENT, referral_id)
    ]
    with pytest.raises(NotFound):
        await consent_history(referral_id, Caller(OTHER_SCHOOL, "referrer", "x"), uow)
    with pytest.raises(NotYourReferral):
        await consent_history(referral_id, Caller(SCHOOL, "receiver", "x"), uow)
    assert len(uow.committed.audit) == 1


async def test_an_import_records_each_rows_consent_and_reports_a_bad_one(uow: FakeUnitOfWork) -> None:
    young = replace(row(2), consent=GivenConsent(ConsentGiver.YOUNG_PERSON, CONSENTED))
    with pytest.raises(importing.ImportRejected) as rejected:
        await importing.import_referrals([young], REFERRER, uow, b"k", idempotency=Idempotency("i", "h"))
    assert [(p.line, p.column, p.rule) for p in rejected.value.problems] == [
        (2, "consent_given_by", "young_person_16_or_over")
    ]
    unknown = replace(row(3), consent=GivenConsent(PARENT, CONSENTED, ConsentScope(("svc-x",), ())))
    with pytest.raises(importing.ImportRejected) as rejected:
        await importing.import_referrals([unknown], REFERRER, uow, b"k", idempotency=Idempotency("i", "h"))
    assert [(p.column, p.rule) for p in rejected.value.problems] == [("consent_scope_service_ids", "known_service")]
    await importing.import_referrals([row(2)], REFERRER, uow, b"k", idempotency=Idempotency("i", "h"))
    [(referral_id, [record])] = uow.committed.consents.items()
    assert (record.version, record.recorded_via, record.recorded_by_org_id) == (1, "import", SCHOOL)
    assert [e.type for e, key in uow.committed.published if key == referral_id] == [SUBMITTED, GIVEN]
