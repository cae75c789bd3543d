"""The use cases over the in-memory unit of work: no database, no HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.domain.audit import AuditAction, AuditQuery
from referrals.domain.child import PersonalDetails, child_reference
from referrals.domain.codes import HoldReason, NeedCode, Urgency
from referrals.domain.consent import ConsentGiver, ConsentScope
from referrals.domain.directory import Clock, DirectoryConflict, Organisation, OrganisationKind, Service
from referrals.domain.lifecycle import Status
from referrals.domain.listing import ListFilter
from referrals.domain.model import DuplicateReferral, IllegalMove, MissingDetail, MoveDetails, NotYourMove
from referrals.service_layer import audit, directory, importing
from referrals.service_layer.callers import Caller
from referrals.service_layer.consent import GivenConsent
from referrals.service_layer.errors import NotFound, NotYourReferral, UnknownService, VersionMismatch
from referrals.service_layer.idempotency import Idempotency, IdempotencyKeyReused
from referrals.service_layer.moves import MoveReferral, move_referral
from referrals.service_layer.reading import get_referral, list_referrals, referral_history
from referrals.service_layer.submission import SubmitReferral, submit_referral
from send_shared.events.schemas import ORGANISATION_UPSERTED, SERVICE_UPSERTED

from .fakes import FakeState, FakeUnitOfWork

KEY = b"test-key"
SCHOOL, OTHER_SCHOOL, CAMHS, LA = "org-school", "org-other-school", "org-camhs", "org-la"
REFERRER = Caller(SCHOOL, "referrer", "teacher@school")
RECEIVER = Caller(CAMHS, "receiver", "clinician@camhs")
NHS_NUMBER = "9434765919"
CONSENTED = datetime(2026, 1, 2, tzinfo=UTC)
ORGANISATIONS = [
    Organisation(SCHOOL, "School", OrganisationKind.SCHOOL, "area"),
    Organisation(OTHER_SCHOOL, "Other school", OrganisationKind.SCHOOL, "area"),
    Organisation(CAMHS, "CAMHS", OrganisationKind.CAMHS, "area"),
    Organisation(LA, "Local authority", OrganisationKind.LOCAL_AUTHORITY, "area"),
]
SERVICES = [
    Service("svc-camhs", CAMHS, "CAMHS core", (NeedCode.SEMH,), (Urgency.ROUTINE, Urgency.URGENT), (Clock.CYPMH_4W,)),
    Service("svc-camhs-nd", CAMHS, "Neurodevelopmental", (NeedCode.ASD,), (Urgency.ROUTINE,), ()),
    Service("svc-ehc", LA, "EHC assessment", (NeedCode.SEMH,), (Urgency.ROUTINE,), (Clock.EHC_DECISION_6W,)),
]


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    fake = FakeUnitOfWork(FakeState())
    assert await directory.seed_if_empty(ORGANISATIONS, SERVICES, fake, source="/test") == 7
    fake.committed.published.clear()
    return fake


def person(nhs_number: str = NHS_NUMBER) -> PersonalDetails:
    return PersonalDetails("Sam", "Taylor", date(2015, 4, 12), nhs_number, None, "anxiety")


CONSENT = GivenConsent(ConsentGiver.PARENT, CONSENTED, ConsentScope.of([], [CAMHS, LA]), note="all")


async def submit(
    uow: FakeUnitOfWork,
    service_id: str = "svc-camhs",
    *,
    key: str = "key-1",
    request_hash: str = "hash-1",
    urgency: Urgency = Urgency.ROUTINE,
    caller: Caller = REFERRER,
) -> str:
    response = await submit_referral(
        SubmitReferral(caller, service_id, person(), CONSENT, urgency, NeedCode.SEMH, None),
        uow,
        KEY,
        idempotency=Idempotency(key, request_hash),
        render=lambda r, _estimate: {"id": r.id, "version": r.version},
    )
    referral_id: str = response.body["id"]
    return referral_id


async def move(
    uow: FakeUnitOfWork,
    referral_id: str,
    target: Status,
    *,
    version: int,
    caller: Caller = RECEIVER,
    occurred_at: datetime | None = None,
    details: MoveDetails = MoveDetails(),
) -> None:
    await move_referral(MoveReferral(caller, referral_id, target, version, details, occurred_at), uow)


# Submission


async def test_a_submission_is_stored_with_its_history_and_event(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    stored = uow.committed.referrals[referral_id]
    assert (stored.status, stored.version, stored.receiving_org_id) == (Status.SUBMITTED, 1, CAMHS)
    assert stored.child_ref == child_reference(NHS_NUMBER, KEY)
    assert [(h.version, h.status, h.actor_org_id) for h in uow.committed.history] == [(1, Status.SUBMITTED, SCHOOL)]
    assert [(e.type, key) for e, key in uow.committed.published] == [
        ("uk.send.referral.submitted.v1", referral_id),
        ("uk.send.referral.consent.given.v1", referral_id),
    ]
    [consent] = uow.committed.consents[referral_id]
    assert (consent.version, consent.status, consent.scope, consent.note) == (1, "given", CONSENT.scope, "all")


async def test_a_retry_with_the_same_key_replays_the_first_response(uow: FakeUnitOfWork) -> None:
    first = await submit(uow)
    assert await submit(uow) == first
    with pytest.raises(IdempotencyKeyReused):
        await submit(uow, request_hash="another body")
    assert len(uow.committed.referrals) == 1


async def test_an_unknown_service_or_an_urgency_it_does_not_take_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(UnknownService) as unknown:
        await submit(uow, "svc-nowhere")
    assert (unknown.value.field, unknown.value.rule) == ("service_id", "known_service")
    with pytest.raises(MissingDetail) as urgency:
        await submit(uow, "svc-camhs-nd", urgency=Urgency.URGENT)
    assert (urgency.value.field, urgency.value.rule) == ("urgency", "offered_by_service")
    assert uow.committed.referrals == {}


async def test_one_open_referral_per_child_and_service(uow: FakeUnitOfWork) -> None:
    first = await submit(uow)
    with pytest.raises(DuplicateReferral) as duplicate:
        await submit(uow, key="key-2")
    assert duplicate.value.existing.id == first
    elsewhere = await submit(uow, "svc-camhs-nd", key="key-3")
    assert uow.committed.referrals[elsewhere].parallel_referral_ids == (first,)


async def test_a_closed_referral_does_not_block_a_new_one(uow: FakeUnitOfWork) -> None:
    first = await submit(uow)
    await move(uow, first, Status.WITHDRAWN, version=1, caller=REFERRER)
    assert await submit(uow, key="key-2") != first


# Reading


async def test_reading_a_referral_is_audited_and_only_its_parties_read_it(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    referral, details, parallel, _ = await get_referral(referral_id, RECEIVER, uow)
    assert (referral.id, details, parallel) == (referral_id, person(), [])
    assert [(e.organisation_id, e.action) for e in uow.committed.audit] == [(CAMHS, AuditAction.READ_REFERRAL)]
    with pytest.raises(NotYourReferral):
        await get_referral(referral_id, Caller(CAMHS, "referrer", "x"), uow)
    with pytest.raises(NotFound):
        await get_referral(referral_id, Caller(OTHER_SCHOOL, "referrer", "x"), uow)
    assert len(uow.committed.audit) == 1


async def test_lists_page_through_what_the_organisation_receives(uow: FakeUnitOfWork) -> None:
    ids = {await submit(uow), await submit(uow, "svc-camhs-nd", key="key-2")}
    first, cursor = await list_referrals(ListFilter(CAMHS, "receiver"), uow, limit=1, cursor=None)
    second, last = await list_referrals(ListFilter(CAMHS, "receiver"), uow, limit=1, cursor=cursor)
    assert {r.id for r in first + second} == ids
    assert last is None
    assert (await list_referrals(ListFilter(CAMHS, "ops"), uow, limit=10, cursor=None)) == ([], None)


# Moves


async def test_the_receiver_moves_and_history_records_each_move(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.ACCEPTED, version=1)
    hold = MoveDetails(reason_code=HoldReason.FAMILY_UNAVAILABLE, expected_resume=date.today() + timedelta(days=30))
    await move(uow, referral_id, Status.ON_HOLD, version=2, details=hold)
    history = await referral_history(referral_id, REFERRER, uow)
    assert [(h.version, h.status, h.previous_status) for h in history] == [
        (1, Status.SUBMITTED, None),
        (2, Status.ACCEPTED, Status.SUBMITTED),
        (3, Status.ON_HOLD, Status.ACCEPTED),
    ]
    assert uow.committed.referrals[referral_id].held_from is Status.ACCEPTED


async def test_a_stale_version_an_outsider_or_the_wrong_party_changes_nothing(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(VersionMismatch) as stale:
        await move(uow, referral_id, Status.ACCEPTED, version=7)
    assert stale.value.current == 1
    with pytest.raises(NotFound):
        await move(uow, referral_id, Status.WITHDRAWN, version=1, caller=Caller(OTHER_SCHOOL, "referrer", "x"))
    with pytest.raises(NotYourMove):
        await move(uow, referral_id, Status.ACCEPTED, version=1, caller=REFERRER)
    with pytest.raises(IllegalMove):
        await move(uow, referral_id, Status.SCHEDULED, version=1, details=MoveDetails(appointment_at=datetime.now(UTC)))
    assert uow.committed.referrals[referral_id].version == 1
    assert len(uow.committed.history) == 1


async def test_a_move_cannot_happen_in_the_future(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(MissingDetail) as future:
        await move(uow, referral_id, Status.ACCEPTED, version=1, occurred_at=datetime.now(UTC) + timedelta(minutes=2))
    assert (future.value.field, future.value.rule) == ("occurred_at", "not_in_future")


async def test_a_hand_off_opens_a_linked_referral_at_the_other_service(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await move(uow, referral_id, Status.HANDED_OFF, version=1, details=MoveDetails(target_service_id="svc-ehc"))
    handed_off = uow.committed.referrals[referral_id]
    assert handed_off.status is Status.HANDED_OFF
    assert handed_off.linked_to_id is not None
    linked = uow.committed.referrals[handed_off.linked_to_id]
    assert (linked.service_id, linked.receiving_org_id, linked.linked_from_id) == ("svc-ehc", LA, referral_id)
    assert (linked.is_ehc, linked.status) == (True, Status.SUBMITTED)
    assert uow.committed.people[linked.id] == person()


async def test_a_hand_off_goes_to_another_service_with_no_open_referral_for_the_child(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    with pytest.raises(MissingDetail) as same:
        await move(uow, referral_id, Status.HANDED_OFF, version=1, details=MoveDetails(target_service_id="svc-camhs"))
    assert (same.value.field, same.value.rule) == ("target_service_id", "different_service")
    await submit(uow, "svc-ehc", key="key-2")
    with pytest.raises(DuplicateReferral):
        await move(uow, referral_id, Status.HANDED_OFF, version=1, details=MoveDetails(target_service_id="svc-ehc"))
    with pytest.raises(UnknownService):
        await move(uow, referral_id, Status.HANDED_OFF, version=1, details=MoveDetails(target_service_id="svc-nowhere"))
    assert uow.committed.referrals[referral_id].status is Status.SUBMITTED


# Directory


async def test_directory_changes_bump_the_version_and_emit_an_event(uow: FakeUnitOfWork) -> None:
    org = await directory.upsert_organisation(
        Organisation("org-new", "New", OrganisationKind.HEALTH, "area"), uow, source="/test"
    )
    again = await directory.upsert_organisation(org, uow, source="/test")
    assert (org.version, again.version) == (1, 2)
    assert [e.type for e, _ in uow.committed.published] == [ORGANISATION_UPSERTED] * 2
    service = Service("svc-new", "org-new", "New", (NeedCode.SEMH,), (Urgency.ROUTINE,), ())
    assert (await directory.upsert_service(service, uow, source="/test", owner="org-new")).version == 1
    assert uow.committed.published[-1][0].type == SERVICE_UPSERTED


async def test_directory_rules(uow: FakeUnitOfWork) -> None:
    no_trust = Organisation("org-x", "X", OrganisationKind.SCHOOL, "area", trust_id=CAMHS)
    with pytest.raises(DirectoryConflict) as trust:
        await directory.upsert_organisation(no_trust, uow, source="/test")
    assert trust.value.field == "trust_id"
    orphan = Service("svc-x", "org-nowhere", "X", (NeedCode.SEMH,), (Urgency.ROUTINE,), ())
    with pytest.raises(DirectoryConflict) as unknown:
        await directory.upsert_service(orphan, uow, source="/test")
    assert unknown.value.field == "organisation_id"
    moved = Service("svc-camhs", LA, "X", (NeedCode.SEMH,), (Urgency.ROUTINE,), ())
    with pytest.raises(DirectoryConflict):
        await directory.upsert_service(moved, uow, source="/test")
    no_target = Service("svc-x", CAMHS, "X", (NeedCode.SEMH,), (Urgency.ROUTINE,), (Clock.SERVICE_TARGET,))
    with pytest.raises(DirectoryConflict) as target:
        await directory.upsert_service(no_target, uow, source="/test")
    assert target.value.field == "target_days"
    assert uow.committed.published == []


async def test_an_organisations_admin_changes_its_own_services_only(uow: FakeUnitOfWork) -> None:
    theirs = Service("svc-camhs", CAMHS, "Taken", (NeedCode.SEMH,), (Urgency.ROUTINE,), ())
    with pytest.raises(directory.NotOwner):
        await directory.upsert_service(theirs, uow, source="/test", owner=LA)
    with pytest.raises(directory.NotOwner):
        await directory.upsert_service(
            Service("svc-camhs", LA, "Taken", (NeedCode.SEMH,), (Urgency.ROUTINE,), ()), uow, source="/test", owner=LA
        )
    assert uow.committed.services["svc-camhs"].name == "CAMHS core"


async def test_the_seed_loads_into_an_empty_directory_only(uow: FakeUnitOfWork) -> None:
    assert await directory.seed_if_empty(ORGANISATIONS, SERVICES, uow, source="/test") == 0
    assert await directory.is_registered(SCHOOL, uow)
    assert not await directory.is_registered("org-nowhere", uow)


async def test_known_organisations_asks_the_directory_once_for_a_known_one_and_each_time_for_an_unknown_one(
    uow: FakeUnitOfWork,
) -> None:
    opened: list[int] = []

    def counted() -> FakeUnitOfWork:
        opened.append(1)
        return uow

    known = directory.KnownOrganisations(counted)
    assert [await known(SCHOOL) for _ in range(3)] == [True, True, True]
    assert len(opened) == 1
    assert [await known("org-new") for _ in range(2)] == [False, False]
    assert len(opened) == 3
    await directory.upsert_organisation(
        Organisation("org-new", "New", OrganisationKind.SCHOOL, "area"), uow, source="/t"
    )
    assert await known("org-new")  # registered meanwhile (by this process or any other): seen at once
    assert await known("org-new")
    assert len(opened) == 4


# Import


def row(
    line: int,
    status: Status = Status.SUBMITTED,
    nhs_number: str = NHS_NUMBER,
    *,
    service_id: str = "svc-camhs",
    referrer_org_id: str | None = None,
    accepted_at: datetime | None = None,
) -> importing.ImportedReferral:
    return importing.ImportedReferral(
        line=line,
        service_id=service_id,
        referrer_org_id=referrer_org_id,
        person=person(nhs_number),
        consent=CONSENT,
        primary_need=NeedCode.SEMH,
        secondary_need=None,
        urgency=Urgency.ROUTINE,
        referred_at=datetime(2026, 1, 5, tzinfo=UTC),
        status=status,
        accepted_at=accepted_at,
        status_at=None,
        appointment_at=None,
        hold_reason=None,
        expected_resume=None,
    )


async def import_rows(uow: FakeUnitOfWork, rows: list[importing.ImportedReferral], caller: Caller) -> list[str]:
    response = await importing.import_referrals(rows, caller, uow, KEY, idempotency=Idempotency("k", "h"))
    ids: list[str] = response.body["referral_ids"]
    return ids


async def test_a_receiver_imports_its_waiting_list_with_its_business_times(uow: FakeUnitOfWork) -> None:
    accepted = datetime(2026, 2, 1, tzinfo=UTC)
    ids = await import_rows(uow, [row(2, Status.ACCEPTED, referrer_org_id=SCHOOL, accepted_at=accepted)], RECEIVER)
    referral = uow.committed.referrals[ids[0]]
    assert (referral.status, referral.referrer_org_id, referral.status_at) == (Status.ACCEPTED, SCHOOL, accepted)
    assert {h.actor_org_id for h in uow.committed.history} == {CAMHS}


async def test_an_import_is_all_or_nothing_and_names_every_problem(uow: FakeUnitOfWork) -> None:
    rows = [
        row(2),
        row(3),  # the same child at the same service as line 2
        row(4, Status.ACCEPTED, nhs_number="4010232137", accepted_at=datetime(2026, 2, 1, tzinfo=UTC)),
        row(5, nhs_number="4010232137", service_id="svc-nowhere"),
    ]
    with pytest.raises(importing.ImportRejected) as rejected:
        await importing.import_referrals(
            rows,
            REFERRER,
            uow,
            KEY,
            idempotency=Idempotency("k", "h"),
            earlier_problems=[importing.ImportProblem(6, "date_of_birth", "date", "bad date")],
        )
    assert [(p.line, p.column, p.rule) for p in rejected.value.problems] == [
        (3, "nhs_number", "no_open_duplicate"),
        (4, "status", "role_may_move"),
        (5, "service_id", "known_service"),
        (6, "date_of_birth", "date"),
    ]
    assert uow.committed.referrals == {}
    assert uow.committed.responses == {}


async def test_an_import_finds_open_referrals_already_stored(uow: FakeUnitOfWork) -> None:
    await submit(uow)
    with pytest.raises(importing.ImportRejected):
        await import_rows(uow, [row(2)], REFERRER)
    ids = await import_rows(uow, [row(2, service_id="svc-camhs-nd")], REFERRER)
    assert len(uow.committed.referrals[ids[0]].parallel_referral_ids) == 1


# Audit


async def test_an_organisations_admin_reads_its_own_audit_entries_only(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await get_referral(referral_id, RECEIVER, uow)
    await get_referral(referral_id, REFERRER, uow)
    admin = Caller(CAMHS, "admin", "admin@camhs")
    entries = await audit.audit_entries(AuditQuery(limit=10), admin, uow)
    assert [e.organisation_id for e in entries] == [CAMHS]
    with pytest.raises(audit.NotYourOrganisation):
        await audit.audit_entries(AuditQuery(limit=10, organisation_id=SCHOOL), admin, uow)
    everyone = await audit.audit_entries(AuditQuery(limit=10), Caller("org-platform", "platform_admin", "p"), uow)
    assert [e.organisation_id for e in everyone] == [SCHOOL, CAMHS]
