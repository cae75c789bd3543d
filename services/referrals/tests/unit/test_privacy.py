"""Erasure (UK GDPR Art. 17) and subject access (Art. 15): the domain's rules, and the use cases over the fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from referrals.domain.audit import AuditAction
from referrals.domain.codes import Urgency
from referrals.domain.lifecycle import Status
from referrals.domain.model import MoveDetails, Referral
from referrals.domain.privacy import ErasureRefused, Tombstone, check_erasable
from referrals.service_layer.callers import Caller
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.privacy import SubjectAccessRequest, erase_referral, subject_access
from referrals.service_layer.reading import get_referral, referral_history

from .fakes import FakeUnitOfWork
from .test_services import CAMHS, KEY, LA, NHS_NUMBER, RECEIVER, REFERRER, SCHOOL, move, submit, uow

__all__ = ["uow"]  # the fixture, shared with the other use-case tests

AT = datetime(2026, 3, 1, tzinfo=UTC)
LA_RECEIVER = Caller(LA, "receiver", "officer@la")


def referral(status: Status, *, is_ehc: bool = False, outcome: str | None = None) -> Referral:
    """A referral in ``status`` as stored (the rules read only the stored state, not how it got there)."""
    return Referral(
        id="r-1",
        child_ref="c" * 32,
        referrer_org_id=SCHOOL,
        service_id="svc-ehc" if is_ehc else "svc-camhs",
        receiving_org_id=LA if is_ehc else CAMHS,
        urgency=Urgency.ROUTINE,
        referred_at=AT,
        is_ehc=is_ehc,
        status=status,
        held_from=Status.ACCEPTED if status is Status.ON_HOLD else None,
        last_details=MoveDetails(outcome_code=outcome),
    )


# The rules


@pytest.mark.parametrize(
    "status",
    [Status.SUBMITTED, Status.ACKNOWLEDGED, Status.ACCEPTED, Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD],
)
def test_an_open_referral_is_not_erased(status: Status) -> None:
    with pytest.raises(ErasureRefused) as refused:
        check_erasable(referral(status))
    assert refused.value.rule == "referral_open"


@pytest.mark.parametrize(
    ("status", "is_ehc", "outcome"),
    [
        (Status.WITHDRAWN, False, None),
        (Status.REJECTED, False, None),
        (Status.HANDED_OFF, False, None),
        (Status.COMPLETED, False, "support_completed"),
        (Status.COMPLETED, True, "no_plan"),
        (Status.ENTERED_IN_ERROR, True, None),  # a plan recorded for the wrong child is no statutory record
        (Status.WITHDRAWN, True, None),
    ],
)
def test_a_closed_referral_is_erasable(status: Status, is_ehc: bool, outcome: str | None) -> None:
    check_erasable(referral(status, is_ehc=is_ehc, outcome=outcome))


def test_an_ehc_plan_issued_is_a_statutory_record() -> None:
    with pytest.raises(ErasureRefused) as refused:
        check_erasable(referral(Status.COMPLETED, is_ehc=True, outcome="plan_issued"))
    assert refused.value.rule == "statutory_record"


# Erasure, over the fakes


async def closed(uow: FakeUnitOfWork) -> str:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.WITHDRAWN, version=1, caller=REFERRER)
    return referral_id


async def test_erasure_leaves_a_tombstone_and_keeps_the_pseudonymous_record(uow: FakeUnitOfWork) -> None:
    referral_id = await closed(uow)
    before = (
        repr(uow.committed.referrals[referral_id]),
        list(uow.committed.history),
        list(uow.committed.published),
        [(c.version, c.status, c.given_by, c.scope) for c in uow.committed.consents[referral_id]],
    )
    tombstone = await erase_referral(referral_id, RECEIVER, uow)
    assert tombstone.erased_by_org_id == CAMHS
    assert referral_id not in uow.committed.people
    assert uow.committed.erased[referral_id] == tombstone
    assert [c.note for c in uow.committed.consents[referral_id]] == [None]
    after = (
        repr(uow.committed.referrals[referral_id]),
        list(uow.committed.history),
        list(uow.committed.published),
        [(c.version, c.status, c.given_by, c.scope) for c in uow.committed.consents[referral_id]],
    )
    assert after == before  # the referral, its history, consent codes, and no event published
    [entry] = [e for e in uow.committed.audit if e.action is AuditAction.ERASED]
    assert (entry.referral_id, entry.organisation_id, entry.role, entry.subject) == (
        referral_id,
        CAMHS,
        "receiver",
        "clinician@camhs",
    )


async def test_an_erased_referral_reads_as_its_tombstone(uow: FakeUnitOfWork) -> None:
    referral_id = await closed(uow)
    tombstone = await erase_referral(referral_id, REFERRER, uow)
    shown, person, _parallel, _consent = await get_referral(referral_id, REFERRER, uow)
    assert person == Tombstone(tombstone.erased_at, SCHOOL)
    assert shown.status is Status.WITHDRAWN
    assert [h.status for h in await referral_history(referral_id, RECEIVER, uow)] == [
        Status.SUBMITTED,
        Status.WITHDRAWN,
    ]


async def test_erasing_again_changes_nothing(uow: FakeUnitOfWork) -> None:
    referral_id = await closed(uow)
    first = await erase_referral(referral_id, REFERRER, uow)
    audited = len(uow.committed.audit)
    assert await erase_referral(referral_id, RECEIVER, uow) == first
    assert len(uow.committed.audit) == audited


async def test_an_open_referral_keeps_its_data(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(ErasureRefused) as refused:
        await erase_referral(referral_id, REFERRER, uow)
    assert refused.value.rule == "referral_open"
    assert uow.committed.people[referral_id].given_name == "Sam"
    assert not [e for e in uow.committed.audit if e.action is AuditAction.ERASED]


async def test_an_ehc_plan_issued_keeps_its_data(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow, "svc-ehc")
    await move(uow, referral_id, Status.ACCEPTED, version=1, caller=LA_RECEIVER)
    details = MoveDetails(outcome_code="plan_issued")
    await move(uow, referral_id, Status.COMPLETED, version=2, caller=LA_RECEIVER, details=details)
    with pytest.raises(ErasureRefused) as refused:
        await erase_referral(referral_id, LA_RECEIVER, uow)
    assert refused.value.rule == "statutory_record"
    assert referral_id in uow.committed.people


@pytest.mark.parametrize(
    ("caller", "error"),
    [
        (Caller("org-other-school", "referrer", "someone@other"), NotFound),  # not a party: no such referral
        (Caller(SCHOOL, "receiver", "someone@school"), NotYourReferral),  # a party, in a role that may not read
        (Caller(CAMHS, "referrer", "someone@camhs"), NotYourReferral),
        (Caller(CAMHS, "admin", "admin@camhs"), NotYourReferral),
    ],
)
async def test_only_the_referrer_and_the_receiver_erase(
    uow: FakeUnitOfWork, caller: Caller, error: type[Exception]
) -> None:
    referral_id = await closed(uow)
    with pytest.raises(error):
        await erase_referral(referral_id, caller, uow)
    assert referral_id in uow.committed.people


# Subject access, over the fakes


async def test_subject_access_exports_the_callers_referrals_of_the_child(uow: FakeUnitOfWork) -> None:
    first = await closed(uow)
    second = await submit(uow, key="key-2", request_hash="hash-2")
    await get_referral(second, RECEIVER, uow)  # a read, to be seen in the export
    await erase_referral(first, RECEIVER, uow)
    records = await subject_access(SubjectAccessRequest(REFERRER, nhs_number=NHS_NUMBER), uow, KEY)
    assert [r.referral.id for r in records] == [first, second]
    erased, kept = records
    assert erased.person is not None and erased.person.given_name is None and erased.person.erased_at is not None
    assert kept.person is not None and (kept.person.given_name, kept.person.nhs_number) == ("Sam", NHS_NUMBER)
    assert [c.note for c in kept.consents] == ["all"]
    assert [h.status for h in erased.history] == [Status.SUBMITTED, Status.WITHDRAWN]
    assert [(e.action, e.organisation_id) for e in kept.audit_log] == [
        (AuditAction.READ_REFERRAL, CAMHS),
        (AuditAction.SUBJECT_ACCESS, SCHOOL),
    ]
    assert (AuditAction.ERASED, CAMHS) in [(e.action, e.organisation_id) for e in erased.audit_log]


async def test_subject_access_finds_an_erased_referral_by_its_child_reference(uow: FakeUnitOfWork) -> None:
    referral_id = await closed(uow)
    await erase_referral(referral_id, REFERRER, uow)
    [record] = await subject_access(SubjectAccessRequest(RECEIVER, nhs_number=NHS_NUMBER), uow, KEY)
    assert record.referral.id == referral_id


@pytest.mark.parametrize(
    "caller",
    [
        Caller("org-other-school", "referrer", "someone@other"),  # another organisation
        Caller(CAMHS, "referrer", "someone@camhs"),  # the receiver's other role: it sent none
        Caller(SCHOOL, "receiver", "someone@school"),  # the referrer's other role: it receives none
    ],
)
async def test_subject_access_shows_nothing_of_other_organisations(uow: FakeUnitOfWork, caller: Caller) -> None:
    await submit(uow)
    assert await subject_access(SubjectAccessRequest(caller, nhs_number=NHS_NUMBER), uow, KEY) == []
    assert await subject_access(SubjectAccessRequest(caller, nhs_number="4010232137"), uow, KEY) == []
    audited = [e for e in uow.committed.audit if e.action is AuditAction.SUBJECT_ACCESS]
    assert [(e.organisation_id, e.referral_id) for e in audited] == [(caller.organisation_id, None)] * 2
