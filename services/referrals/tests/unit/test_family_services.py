"""Family view use cases over the in-memory unit of work: links (token never stored, expiry, revocation), the
page (only this child's referrals, every view audited), contact details, withdrawal, and the link emails."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest

from referrals.domain.audit import AuditAction
from referrals.domain.child import PersonalDetails
from referrals.domain.codes import HoldReason, Urgency
from referrals.domain.consent import ConsentGiver, ConsentRecord, ConsentScope, ConsentStatus
from referrals.domain.deadlines import ClockState, ReferralClocks
from referrals.domain.family import FamilyContact, LinkRefused, LinkState, NoContactEmail
from referrals.domain.lifecycle import Status
from referrals.domain.model import MoveDetails, Referral
from referrals.service_layer import family as cases
from referrals.service_layer.directory import seed_if_empty
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.family_mail import FamilyLinkMailer
from send_shared.smtp import MailDeliveryError

from .fakes import FakeUnitOfWork
from .test_services import CAMHS, ORGANISATIONS, OTHER_SCHOOL, RECEIVER, REFERRER, SCHOOL, SERVICES

NOW = datetime(2026, 11, 9, 11, 0, tzinfo=UTC)
CHILD, OTHER_CHILD = "c" * 32, "d" * 32


def put_referral(
    uow: FakeUnitOfWork,
    *,
    child_ref: str = CHILD,
    service_id: str = "svc-camhs",
    status: Status = Status.SUBMITTED,
    referrer: str = SCHOOL,
    given_name: str = "Sam",
    consent: ConsentStatus | None = ConsentStatus.GIVEN,
    details: MoveDetails = MoveDetails(),
    held_from: Status | None = None,
) -> Referral:
    service = next(s for s in SERVICES if s.id == service_id)
    referral = Referral(
        id=str(uuid.uuid4()), child_ref=child_ref, referrer_org_id=referrer, service_id=service_id,
        receiving_org_id=service.organisation_id, urgency=Urgency.ROUTINE, referred_at=NOW - timedelta(days=20),
        status=status, version=1, status_at=NOW - timedelta(days=10), last_details=details, held_from=held_from,
    )  # fmt: skip
    state = uow.committed
    state.referrals[referral.id] = referral
    state.people[referral.id] = PersonalDetails(given_name, "Taylor", date(2015, 4, 12), "9434765919", None, "r")
    if consent is not None:
        state.consents[referral.id] = [
            ConsentRecord(
                referral.id, 1, consent, ConsentGiver.PARENT,
                ConsentScope() if consent is ConsentStatus.WITHDRAWN else ConsentScope((service_id,), ()),
                NOW - timedelta(days=21), NOW - timedelta(days=21), str(uuid.uuid4()),
            )
        ]  # fmt: skip
    return referral


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    fake = FakeUnitOfWork()
    await seed_if_empty(ORGANISATIONS, SERVICES, fake, source="/test")
    nd = fake.committed.services["svc-camhs-nd"]
    fake.committed.services[nd.id] = replace(nd, contact_phone="01632 960 200", contact_url="https://camhs.example")
    return fake


def queued_token(uow: FakeUnitOfWork, link_id: str) -> str:
    email = next(e for e in uow.committed.family_emails.values() if e["link_id"] == link_id)
    return str(email["token"])


async def make_link(uow: FakeUnitOfWork, referral: Referral, *, days: int = 30, now: datetime = NOW) -> str:
    link = await cases.create_link(referral.id, REFERRER, uow, email="parent@example.com", days=days, now=now)
    return queued_token(uow, link.id)


async def test_a_link_keeps_only_the_hash_of_its_token_and_queues_its_email(uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    link = await cases.create_link(referral.id, RECEIVER, uow, email="parent@example.com", days=None, now=NOW)
    token = queued_token(uow, link.id)
    assert len(token) >= 43  # 256 bits, URL-safe base64
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(uow.committed.family_links)
    assert link.expires_at == NOW + timedelta(days=30)
    assert link.child_ref == CHILD and link.issued_by_org_id == CAMHS
    assert uow.committed.family_contacts[referral.id].email == "parent@example.com"


async def test_a_link_needs_an_email_and_a_reader_of_the_referral(uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    with pytest.raises(NoContactEmail):
        await cases.create_link(referral.id, REFERRER, uow, email=None, days=None, now=NOW)
    with pytest.raises(NotFound):
        await cases.create_link(referral.id, type(REFERRER)(OTHER_SCHOOL, "referrer", "x"), uow, email="a@b.co",
                                days=None, now=NOW)  # fmt: skip
    with pytest.raises(NotYourReferral):
        await cases.create_link(referral.id, type(REFERRER)(SCHOOL, "receiver", "x"), uow, email="a@b.co",
                                days=None, now=NOW)  # fmt: skip
    with pytest.raises(Exception, match="1 to 90"):
        await cases.create_link(referral.id, REFERRER, uow, email="a@b.co", days=91, now=NOW)
    assert not uow.committed.family_links and not uow.committed.family_emails


async def test_the_page_shows_the_childs_referrals_only_and_every_view_is_audited(uow: FakeUnitOfWork) -> None:
    first = put_referral(uow)
    held = put_referral(
        uow, service_id="svc-camhs-nd", status=Status.ON_HOLD, held_from=Status.ACCEPTED,
        details=MoveDetails(reason_code=HoldReason.SERVICE_CAPACITY.value, expected_resume=date(2026, 12, 1),
                            explanation="internal note: waiting list review"),
    )  # fmt: skip
    stranger = put_referral(uow, child_ref=OTHER_CHILD, given_name="Alex")
    token = await make_link(uow, first)
    page = await cases.open_page(token, uow, now=NOW + timedelta(minutes=1))
    assert {c.referral_id for c in page.cards} == {first.id, held.id}
    assert stranger.id not in repr(page)
    card = next(c for c in page.cards if c.referral_id == held.id)
    assert (card.hold_reason_code, card.expected_resume) == ("service_capacity", date(2026, 12, 1))
    assert "internal note" not in repr(page) and "Sam" not in repr(page)
    assert card.contact.phone == "01632 960 200"
    views = [e for e in uow.committed.audit if e.action is AuditAction.FAMILY_VIEW]
    assert {e.referral_id for e in views} == {first.id, held.id}
    assert {(e.subject, e.organisation_id, e.role) for e in views} == {
        (f"family-link:{page.link.id}", "family", "family")
    }
    assert uow.committed.family_links[page.link.id].last_used_at == NOW + timedelta(minutes=1)


async def test_an_expired_link_is_refused(uow: FakeUnitOfWork) -> None:
    token = await make_link(uow, put_referral(uow), days=1)
    await cases.open_page(token, uow, now=NOW + timedelta(hours=23))
    with pytest.raises(LinkRefused) as refused:
        await cases.open_page(token, uow, now=NOW + timedelta(days=1))
    assert refused.value.state is LinkState.EXPIRED


async def test_a_revoked_link_is_refused_and_its_unsent_email_dropped(uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    token = await make_link(uow, referral)
    link_id = next(iter(uow.committed.family_links))
    other = put_referral(uow, service_id="svc-camhs-nd")
    with pytest.raises(NotFound):  # a link is revoked through its own referral only
        await cases.revoke_link(other.id, link_id, REFERRER, uow, now=NOW)
    revoked = await cases.revoke_link(referral.id, link_id, RECEIVER, uow, now=NOW)
    assert revoked.state(NOW) is LinkState.REVOKED and revoked.revoked_by == f"{CAMHS}:clinician@camhs"
    assert all(e["token"] is None for e in uow.committed.family_emails.values())
    with pytest.raises(LinkRefused) as refused:
        await cases.open_page(token, uow, now=NOW)
    assert refused.value.state is LinkState.REVOKED
    with pytest.raises(LinkRefused) as unknown:
        await cases.open_page(token[:-1] + ("A" if token[-1] != "A" else "B"), uow, now=NOW)
    assert unknown.value.state is None
    assert [x.id for x in await cases.list_links(referral.id, REFERRER, uow)] == [link_id]


async def test_contact_details_go_on_every_referral_of_the_child(uow: FakeUnitOfWork) -> None:
    first, second = put_referral(uow), put_referral(uow, service_id="svc-camhs-nd")
    stranger = put_referral(uow, child_ref=OTHER_CHILD)
    token = await make_link(uow, first)
    await cases.update_contact(token, FamilyContact("new@example.com", "07700 900123", None), uow, now=NOW)
    assert uow.committed.family_contacts[second.id].email == "new@example.com"
    assert stranger.id not in uow.committed.family_contacts
    assert any(e.action is AuditAction.FAMILY_CONTACT for e in uow.committed.audit)


async def test_withdrawal_stops_sharing_on_the_childs_open_referrals(uow: FakeUnitOfWork) -> None:
    before = put_referral(uow)
    after = put_referral(uow, service_id="svc-camhs-nd", status=Status.ACCEPTED)
    done = put_referral(uow, service_id="svc-ehc", status=Status.COMPLETED, details=MoveDetails(outcome_code="no_plan"))
    stranger = put_referral(uow, child_ref=OTHER_CHILD)
    token = await make_link(uow, before)
    assert (await cases.open_page(token, uow, now=NOW)).may_withdraw
    assert await cases.withdraw_all_consent(token, lambda: uow, now=NOW) == 2
    state = uow.committed
    assert state.consents[before.id][-1].status is ConsentStatus.WITHDRAWN
    assert state.consents[before.id][-1].recorded_by_org_id is None
    assert state.consents[after.id][-1].status is ConsentStatus.WITHDRAWN
    assert state.referrals[before.id].status is Status.WITHDRAWN  # before acceptance: the referral ends
    assert state.referrals[after.id].status is Status.ACCEPTED  # after: the service decides
    assert len(state.consents[done.id]) == 1 and len(state.consents[stranger.id]) == 1
    assert not (await cases.open_page(token, uow, now=NOW)).may_withdraw


class FakeMailer:
    def __init__(self, failure: MailDeliveryError | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.failure = failure

    async def send(self, message: EmailMessage) -> list[str]:
        if self.failure is not None:
            raise self.failure
        self.sent.append(message)
        return []


async def test_the_email_carries_the_link_and_then_the_token_is_forgotten(uow: FakeUnitOfWork) -> None:
    token = await make_link(uow, put_referral(uow))
    mailer = FakeMailer()
    worker = FamilyLinkMailer(lambda: uow, mailer, url_template="https://send.example/family/{token}",
                              mail_from="SEND <no-reply@send.example>", clock=lambda: NOW)  # fmt: skip
    assert await worker.send_due() == 1
    body = mailer.sent[0].get_body(("plain",))
    assert body is not None and f"https://send.example/family/{token}" in body.get_content()
    assert mailer.sent[0]["To"] == "parent@example.com"
    assert "Sam" not in mailer.sent[0].as_string() and "Taylor" not in mailer.sent[0].as_string()
    assert token not in repr(uow.committed)
    assert await worker.send_due() == 0


async def test_a_failing_relay_is_retried_with_backoff_then_given_up(uow: FakeUnitOfWork) -> None:
    token = await make_link(uow, put_referral(uow))
    clock = [NOW]
    mailer = FakeMailer(MailDeliveryError("SMTP 451: try later", transient=True))
    worker = FamilyLinkMailer(lambda: uow, mailer, url_template="/family/{token}", mail_from="a@b.c",
                              clock=lambda: clock[0], failing_after=0)  # fmt: skip
    assert await worker.send_due() == 0
    email = next(iter(uow.committed.family_emails.values()))
    assert email["attempts"] == 1 and email["next"] == NOW + timedelta(seconds=30)
    assert worker.status() is not None and "451" in str(worker.status())
    assert await worker.send_due() == 0  # not due yet
    assert next(iter(uow.committed.family_emails.values()))["attempts"] == 1
    mailer.failure = MailDeliveryError("SMTP 550: no such mailbox", transient=False)
    clock[0] = NOW + timedelta(minutes=1)
    await worker.send_due()
    email = next(iter(uow.committed.family_emails.values()))
    assert email["attempts"] == 2 and email["next"] is None and email["token"] is None
    assert token not in repr(uow.committed)
    mailer.failure = None
    assert await worker.send_due() == 0  # given up for good


async def test_the_page_says_the_deadline_that_applies(uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow, service_id="svc-ehc")
    start = (NOW - timedelta(days=20)).date()
    uow.committed.clocks[referral.id] = ReferralClocks(
        referral.id, 1, "svc-ehc", (ClockState("ehc_decision_6w", 42, start, "running", start + timedelta(days=42)),)
    )
    token = await make_link(uow, referral)
    card = (await cases.open_page(token, uow, now=NOW)).cards[0]
    assert card.deadline is not None and card.deadline.on_track is True
    assert card.deadline.sentence and "by" in card.deadline.sentence
