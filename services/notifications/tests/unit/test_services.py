"""The use cases on the in-memory unit of work: endpoint management, fan-out, ordering, delivery bookkeeping, email."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from notifications.adapters.webhook_client import Attempt
from notifications.domain import delivery as delivery_module
from notifications.domain.delivery import DeliveryStatus, webhook_id
from notifications.domain.email_policy import RETRY_DELAYS as EMAIL_RETRY_DELAYS
from notifications.domain.email_policy import EmailStatus, Template
from notifications.domain.endpoints import EndpointSpec
from notifications.domain.subscriptions import EndpointStatus, UnsafeTarget
from notifications.entrypoints.consumers import event_handler
from notifications.service_layer import endpoints
from notifications.service_layer.directory import directory_member, set_contacts
from notifications.service_layer.dispatcher import Dispatcher
from notifications.service_layer.fanout import fan_out, held_summary, release_overdue
from notifications.service_layer.mail import MailWorker
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ReferralStatus,
    referral_event_type,
)
from send_shared.smtp import MailDeliveryError

from .fakes import FakeUnitOfWork

SCHOOL, CAMHS, OTHER = "org-school", "org-camhs", "org-other"
LINK = "https://referrals.test/v1/referrals/{referral_id}"
LOCAL = endpoints.UrlPolicy(require_https=False, allow_private=True)
_ids = itertools.count(1)


def spec(path: str = "/hook", *, event_types: tuple[str, ...] = ("uk.send.referral.*",), **extra: Any) -> EndpointSpec:
    values: dict[str, Any] = {"service_ids": (), "urgencies": (), "description": "", **extra}
    return EndpointSpec(f"http://127.0.0.1:9{path}", event_types, **values)


def referral_event(referral_id: str, version: int, status: str, *, service: str = "svc-camhs-core") -> CloudEvent:
    now = datetime.now(UTC)
    data = ReferralEventV1(
        referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref="c" * 32,
        referrer_org_id=SCHOOL, service_id=service, receiving_org_id=CAMHS, urgency="routine",
        occurred_at=now, recorded_at=now,
    )  # fmt: skip
    return CloudEvent(id=f"evt-{next(_ids)}", type=referral_event_type(status), source="/send/referrals",
                      subject=referral_id, data=data.model_dump(mode="json"))  # fmt: skip


async def consume(uow: FakeUnitOfWork, *events: CloudEvent) -> int:
    queued = 0
    for event in events:
        async with uow:
            queued += await fan_out(event, uow, referral_link_template=LINK)
            await uow.commit()
    return queued


async def registered(uow: FakeUnitOfWork, organisation_id: str = CAMHS, **extra: Any) -> str:
    return (await endpoints.register(uow, organisation_id, spec(**extra), policy=LOCAL)).endpoint.id


# Endpoint management


async def test_a_registered_endpoint_is_active_and_its_secret_is_shown_once() -> None:
    uow = FakeUnitOfWork()
    made = await endpoints.register(uow, CAMHS, spec(description="duty inbox"), policy=LOCAL)
    assert made.secret.startswith("whsec_")
    stored = uow.committed.endpoints[made.endpoint.id]
    assert (stored.organisation_id, stored.status, stored.description) == (CAMHS, EndpointStatus.ACTIVE, "duty inbox")
    assert [e.id for e in await endpoints.list_for(uow, CAMHS)] == [made.endpoint.id]
    assert await endpoints.list_for(uow, OTHER) == []


async def test_an_unsafe_url_is_refused_and_nothing_is_stored() -> None:
    uow = FakeUnitOfWork()
    production = endpoints.UrlPolicy(require_https=True, allow_private=False)
    with pytest.raises(UnsafeTarget):
        await endpoints.register(
            uow, CAMHS, EndpointSpec("https://10.1.2.3/hook", ("*",), (), (), ""), policy=production
        )
    assert uow.committed.endpoints == {}


async def test_another_organisations_endpoint_does_not_exist_for_it() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    for attempt in (
        endpoints.get(uow, OTHER, endpoint_id),
        endpoints.pause(uow, OTHER, endpoint_id),
        endpoints.remove(uow, OTHER, endpoint_id),
        endpoints.ping(uow, OTHER, endpoint_id, source="/send/notifications"),
        endpoints.change(uow, OTHER, endpoint_id, spec("/other"), policy=LOCAL),
    ):
        with pytest.raises(endpoints.EndpointNotFound):
            await attempt
    assert uow.committed.endpoints[endpoint_id].status is EndpointStatus.ACTIVE
    assert uow.committed.deliveries == {}


async def test_resume_reactivates_a_disabled_endpoint_and_makes_its_queue_due_now() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    later = datetime.now(UTC) + timedelta(hours=5)
    for delivery in uow.committed.deliveries.values():
        delivery.next_attempt_at = later
    async with uow:
        await uow.endpoints.note_failure(endpoint_id, datetime.now(UTC))
        await uow.endpoints.disable(endpoint_id, "the endpoint answered 410 Gone", datetime.now(UTC))
        await uow.commit()

    resumed = await endpoints.resume(uow, CAMHS, endpoint_id)

    assert (resumed.status, resumed.disabled_reason, resumed.failing_since) == (EndpointStatus.ACTIVE, None, None)
    (delivery,) = uow.committed.deliveries.values()
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= datetime.now(UTC)


async def test_retry_now_makes_only_the_deliveries_waiting_for_a_retry_due() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"), referral_event("r2", 1, "submitted"))
    later = datetime.now(UTC) + timedelta(hours=5)
    waiting, fresh = sorted(uow.committed.deliveries.values(), key=lambda d: d.id)
    waiting.attempts, waiting.next_attempt_at = 3, later  # failed three times, next try in 5 hours
    fresh.next_attempt_at = later  # not attempted yet: not waiting for a retry

    assert await endpoints.retry_now(uow, CAMHS, endpoint_id) == 1

    waiting, fresh = sorted(uow.committed.deliveries.values(), key=lambda d: d.id)
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at <= datetime.now(UTC)
    assert (waiting.attempts, fresh.next_attempt_at) == (3, later)
    assert await endpoints.retry_now(uow, CAMHS, endpoint_id) == 0, "nothing waits any more"
    with pytest.raises(endpoints.EndpointNotFound):
        await endpoints.retry_now(uow, OTHER, endpoint_id)


async def test_a_rotated_secret_signs_alongside_the_old_one_for_the_grace_only() -> None:
    uow = FakeUnitOfWork()
    made = await endpoints.register(uow, CAMHS, spec(), policy=LOCAL)
    rotated = await endpoints.rotate_secret(uow, CAMHS, made.endpoint.id, grace=timedelta(hours=24))
    assert rotated.secret != made.secret
    now = datetime.now(UTC)
    assert rotated.endpoint.secrets_in_use(now) == [rotated.secret, made.secret]
    assert rotated.endpoint.secrets_in_use(now + timedelta(hours=25)) == [rotated.secret]


async def test_remove_takes_the_queue_with_the_endpoint() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    await endpoints.remove(uow, CAMHS, endpoint_id)
    assert uow.committed.endpoints == {} and uow.committed.deliveries == {}


async def test_a_ping_goes_to_the_endpoint_whatever_it_subscribes_to() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow, event_types=("uk.send.waitlist.*",))
    await endpoints.ping(uow, CAMHS, endpoint_id, source="/send/notifications")
    (entry,) = await endpoints.delivery_log(uow, CAMHS, endpoint_id, limit=50, before=None)
    assert (entry.event_type, entry.status) == ("uk.send.webhook.ping.v1", DeliveryStatus.PENDING)


async def test_redelivery_queues_a_new_round_of_the_same_messages_in_their_order() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    events = [referral_event("r1", 1, "submitted"), referral_event("r2", 1, "submitted")]
    await consume(uow, *events)
    assert await endpoints.redeliver_since(uow, CAMHS, endpoint_id, datetime.now(UTC) - timedelta(minutes=1)) == 2
    rounds = sorted((d.id, d.event_id, d.round) for d in uow.committed.deliveries.values())
    assert [(event_id, round_) for _id, event_id, round_ in rounds] == [
        (events[0].id, 0), (events[1].id, 0), (events[0].id, 1), (events[1].id, 1),
    ]  # fmt: skip
    first = min(uow.committed.deliveries)
    await endpoints.redeliver_one(uow, CAMHS, endpoint_id, first)
    assert await uow.deliveries.latest_round(endpoint_id, events[0].id) == 2


async def test_redelivering_an_unknown_delivery_is_not_found_and_queues_nothing() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    other = await registered(uow, OTHER)
    await consume(uow, referral_event("r9", 1, "submitted"))
    before = dict(uow.committed.deliveries)
    foreign = next(d.id for d in before.values() if d.endpoint_id == endpoint_id)
    with pytest.raises(endpoints.EndpointNotFound):
        await endpoints.redeliver_one(uow, OTHER, other, foreign)
    assert uow.committed.deliveries.keys() == before.keys()


# Fan-out


async def test_an_event_reaches_only_the_concerned_organisations_endpoints_that_want_it() -> None:
    uow = FakeUnitOfWork()
    core = await registered(uow, service_ids=("svc-camhs-core",))
    eating = await registered(uow, service_ids=("svc-camhs-eating-disorders",))
    stranger = await registered(uow, OTHER, event_types=("*",))
    paused = await registered(uow)
    await endpoints.pause(uow, CAMHS, paused)

    assert await consume(uow, referral_event("r1", 1, "submitted")) == 2

    targets = {d.endpoint_id for d in uow.committed.deliveries.values()}
    assert targets == {core, paused}, "paused endpoints keep their queue; others' and unwanted ones get nothing"
    assert eating not in targets and stranger not in targets


async def test_an_event_seen_again_is_never_queued_twice() -> None:
    uow = FakeUnitOfWork()
    await registered(uow)
    event = referral_event("r1", 1, "submitted")
    assert await consume(uow, event, event) == 1
    assert len(uow.committed.deliveries) == 1


async def test_an_accepted_referral_queues_an_email_to_the_referrer() -> None:
    uow = FakeUnitOfWork()
    await consume(uow, referral_event("r1", 1, "submitted"), referral_event("r1", 2, "accepted"))
    (email,) = uow.committed.emails.values()
    assert (email.intent.organisation_id, email.intent.template, email.status) == (
        SCHOOL, Template.ACCEPTED, EmailStatus.PENDING,
    )  # fmt: skip


async def test_an_early_version_is_held_until_the_one_before_it_arrives() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    v1, v2, v3 = (referral_event("r1", v, s) for v, s in enumerate(["submitted", "accepted", "scheduled"], 1))
    await consume(uow, v1, v3)
    assert [d.event_id for d in uow.committed.deliveries.values()] == [v1.id]
    async with uow:
        assert (await held_summary(uow))[0] == 1
    await consume(uow, v2)
    log = await endpoints.delivery_log(uow, CAMHS, endpoint_id, limit=10, before=None)
    assert [e.event_id for e in reversed(log)] == [v1.id, v2.id, v3.id]
    assert uow.committed.held == {} and uow.committed.last_sent["r1"] == 3


async def test_a_version_that_never_comes_stops_holding_the_rest_back_after_the_limit() -> None:
    uow = FakeUnitOfWork()
    await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"), referral_event("r1", 3, "scheduled"))
    async with uow:
        assert await release_overdue(uow, hold_limit=timedelta(hours=1), referral_link_template=LINK) == 0
        assert await release_overdue(uow, hold_limit=timedelta(0), referral_link_template=LINK) == 1
        await uow.commit()
    assert uow.committed.held == {} and uow.committed.last_sent["r1"] == 3
    assert await consume(uow, referral_event("r1", 2, "accepted")) == 0, "too late: its successor went on"


async def test_the_newest_organisation_version_wins_and_makes_it_known() -> None:
    uow = FakeUnitOfWork()

    def organisation(version: int) -> CloudEvent:
        data = OrganisationV1(organisation_id=OTHER, version=version, name="x", kind="school", area_id="la-north")
        return CloudEvent(type=ORGANISATION_UPSERTED, source="/send/referrals", subject=OTHER,
                          data=data.model_dump(mode="json"))  # fmt: skip

    is_known = directory_member(lambda: uow)
    assert not await is_known(OTHER)
    await consume(uow, organisation(3), organisation(2))
    assert uow.committed.organisations == {OTHER: 3}
    assert await is_known(OTHER)


async def test_the_consumer_wakes_the_dispatcher_only_when_it_queued_deliveries() -> None:
    uow = FakeUnitOfWork()
    await registered(uow)
    woken: list[str] = []
    handle = event_handler(
        unit_of_work_in=lambda transaction: transaction, referral_link_template=LINK, after=lambda: woken.append("up")
    )
    async with uow:  # the consumer's transaction
        await handle(referral_event("r1", 2, "accepted"), uow)  # early: held, nothing queued
        assert woken == []
        await handle(referral_event("r1", 1, "submitted"), uow)
        await uow.commit()
    assert woken == ["up"] and len(uow.committed.deliveries) == 2


# Delivery bookkeeping


class ScriptedClient:
    """A webhook client answering from a script of status codes (``None``: no answer)."""

    timeout = 1.0

    def __init__(self, script: list[int | None]) -> None:
        self.script = script
        self.sent: list[str] = []
        self.closed = False

    async def send(self, url: str, *, webhook_id: str, body: str, secrets_in_use: list[str], now: datetime) -> Attempt:
        self.sent.append(webhook_id)
        status = self.script.pop(0) if self.script else 200
        if status is None:
            return Attempt(None, 3, "timeout after 1 s", None, None, "TimeoutError")
        return Attempt(status, 3, None, None, None)

    async def close(self) -> None:
        self.closed = True


async def dispatch_until(uow: FakeUnitOfWork, client: ScriptedClient, done: Any, **options: Any) -> Dispatcher:
    dispatcher = Dispatcher(lambda: uow, lambda: client, poll_interval=0.01, **options)  # type: ignore[arg-type, return-value]
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(5):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    return dispatcher


async def test_a_failure_is_retried_on_the_schedule_and_a_success_ends_the_failing_run() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    event = referral_event("r1", 1, "submitted")
    await consume(uow, event)
    client = ScriptedClient([500, None, 200])
    delays = [timedelta(milliseconds=20)] * 7

    def delivery() -> Any:
        return next(iter(uow.committed.deliveries.values()))

    await dispatch_until(uow, client, lambda: delivery().status is DeliveryStatus.SUCCEEDED, retry_delays=delays)

    assert client.sent == [webhook_id(event.id)] * 3, "the same webhook-id on every attempt"
    assert [a.status_code for a in delivery().attempt_log] == [500, None, 200]
    assert delivery().attempts == 3 and delivery().succeeded_at is not None
    assert uow.committed.endpoints[endpoint_id].failing_since is None


async def test_a_failure_waits_for_the_next_attempt_and_starts_a_failing_run() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    started = datetime.now(UTC)

    def delivery() -> Any:
        return next(iter(uow.committed.deliveries.values()))

    await dispatch_until(uow, ScriptedClient([503]), lambda: delivery().attempts == 1)

    assert delivery().status is DeliveryStatus.PENDING
    wait = delivery().next_attempt_at - started
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6.1), "the first retry waits about 5 s"
    assert uow.committed.endpoints[endpoint_id].failing_since is not None


async def test_a_retry_goes_when_due_though_nothing_wakes_the_dispatcher() -> None:
    uow = FakeUnitOfWork()
    await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    client = ScriptedClient([503, 200])
    dispatcher = Dispatcher(lambda: uow, lambda: client, poll_interval=60, retry_delays=[timedelta(milliseconds=300)])  # type: ignore[arg-type, return-value]
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(5):  # far less than the 60 s it waits when no retry is due
            while next(iter(uow.committed.deliveries.values())).status is not DeliveryStatus.SUCCEEDED:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)  # a stop ends the wait too
    assert len(client.sent) == 2


async def test_retries_due_close_together_each_go_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three retries a little apart: each goes at its time, not the second and third at the next poll."""

    class Jitter:
        factors = [1.0, 1.3, 1.6]

        def uniform(self, _low: float, _high: float) -> float:
            return self.factors.pop(0) if self.factors else 1.0

    monkeypatch.setattr(delivery_module, "random", Jitter())
    uow = FakeUnitOfWork()
    await registered(uow)
    await consume(uow, *(referral_event(f"r{i}", 1, "submitted") for i in range(3)))
    client = ScriptedClient([503, 503, 503])
    dispatcher = Dispatcher(lambda: uow, lambda: client, poll_interval=60, retry_delays=[timedelta(seconds=1)])  # type: ignore[arg-type, return-value]
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(8):  # retries due at about 1, 1.3 and 1.6 s; the poll is 60 s
            while any(d.status is not DeliveryStatus.SUCCEEDED for d in uow.committed.deliveries.values()):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)
    assert len(client.sent) == 6


async def test_each_failed_attempt_logs_one_line_without_the_url_or_the_body(caplog: pytest.LogCaptureFixture) -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow, path="/hook?token=s3cret")
    event = referral_event("r1", 1, "submitted")
    await consume(uow, event)
    delivery = next(iter(uow.committed.deliveries.values()))
    client = ScriptedClient([503, None])
    delays = [timedelta(milliseconds=20)] * 7
    with caplog.at_level(logging.WARNING, logger="notifications.service_layer.dispatcher"):
        await dispatch_until(uow, client, lambda: delivery_of(uow).attempts == 3, retry_delays=delays)

    failed = [r for r in caplog.records if r.getMessage() == "webhook attempt failed"]
    assert [(r.endpoint_id, r.delivery_id, r.event_id, r.attempt) for r in failed] == [  # type: ignore[attr-defined]
        (endpoint_id, delivery.id, event.id, 1),
        (endpoint_id, delivery.id, event.id, 2),
    ]
    assert [(r.status_code, r.error_class) for r in failed] == [(503, None), (None, "TimeoutError")]  # type: ignore[attr-defined]
    assert all(datetime.fromisoformat(r.next_attempt_at) > delivery.created_at for r in failed)  # type: ignore[attr-defined]
    for record in failed:
        written = json.dumps(vars(record), default=str)
        assert "s3cret" not in written and "127.0.0.1" not in written and "child_ref" not in written


def delivery_of(uow: FakeUnitOfWork) -> Any:
    return next(iter(uow.committed.deliveries.values()))


async def test_410_gone_fails_the_delivery_and_disables_the_endpoint_and_tells_its_owner() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"), referral_event("r1", 2, "accepted"))
    told: list[tuple[str, str, str]] = []

    async def tell(endpoint: str, organisation: str, reason: str) -> None:
        told.append((endpoint, organisation, reason))

    client = ScriptedClient([410])
    await dispatch_until(uow, client, lambda: bool(told), on_disabled=tell)

    endpoint = uow.committed.endpoints[endpoint_id]
    assert (endpoint.status, endpoint.disabled_reason) == (EndpointStatus.DISABLED, "the endpoint answered 410 Gone")
    assert told == [(endpoint_id, CAMHS, "the endpoint answered 410 Gone")]
    statuses = [d.status for d in sorted(uow.committed.deliveries.values(), key=lambda d: d.id)]
    assert statuses == [DeliveryStatus.FAILED, DeliveryStatus.PENDING], "the next version waits for a resume"
    assert len(client.sent) == 1


async def test_five_days_without_a_success_disables_the_endpoint() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await consume(uow, referral_event("r1", 1, "submitted"))
    async with uow:
        await uow.endpoints.note_failure(endpoint_id, datetime.now(UTC) - timedelta(days=5, minutes=1))
        await uow.commit()
    await dispatch_until(
        uow, ScriptedClient([500]), lambda: uow.committed.endpoints[endpoint_id].status is EndpointStatus.DISABLED
    )
    assert uow.committed.endpoints[endpoint_id].disabled_reason == "failing without a success for 5 days"


async def test_a_message_for_another_organisation_is_refused_at_delivery_time() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    event = referral_event("r1", 1, "submitted")
    await consume(uow, event)
    async with uow:  # as if the endpoint had changed hands since the message was queued
        uow.endpoints._set(endpoint_id, organisation_id=OTHER)
        await uow.commit()
    client = ScriptedClient([])
    await dispatch_until(
        uow, client, lambda: next(iter(uow.committed.deliveries.values())).status is DeliveryStatus.REFUSED
    )
    assert client.sent == []


# Email


class RecordingMailer:
    def __init__(self, failures: list[MailDeliveryError] | None = None) -> None:
        self.failures = failures or []
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> list[str]:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return []


def mail_worker(uow: FakeUnitOfWork, mailer: RecordingMailer) -> MailWorker:
    return MailWorker(lambda: uow, mailer, mail_from="SEND <no-reply@send.test>", referral_url=LINK)


async def accepted(uow: FakeUnitOfWork) -> None:
    await consume(uow, referral_event("r1", 1, "submitted"), referral_event("r1", 2, "accepted"))


async def test_an_email_goes_to_the_organisations_contacts() -> None:
    uow = FakeUnitOfWork()
    await set_contacts(uow, SCHOOL, ["senco@school.example"])
    await accepted(uow)
    mailer = RecordingMailer()
    assert await mail_worker(uow, mailer).send_due() == 1
    assert mailer.sent[0]["To"] == "senco@school.example"
    (email,) = uow.committed.emails.values()
    assert email.status is EmailStatus.SENT and email.sent_at is not None
    assert await mail_worker(uow, mailer).send_due() == 0, "sent once"


async def test_an_organisation_without_contacts_gets_no_email() -> None:
    uow = FakeUnitOfWork()
    await accepted(uow)
    mailer = RecordingMailer()
    assert await mail_worker(uow, mailer).send_due() == 0
    assert [e.status for e in uow.committed.emails.values()] == [EmailStatus.NO_CONTACT]
    assert mailer.sent == []


async def test_a_transient_failure_is_retried_later_and_a_permanent_one_fails() -> None:
    uow = FakeUnitOfWork()
    await set_contacts(uow, SCHOOL, ["senco@school.example"])
    await accepted(uow)
    mailer = RecordingMailer(
        [MailDeliveryError("SMTP 451", transient=True), MailDeliveryError("SMTP 550", transient=False)]
    )
    before = datetime.now(UTC)
    assert await mail_worker(uow, mailer).send_due() == 0
    (email,) = uow.committed.emails.values()
    assert (email.status, email.attempts, email.last_error) == (EmailStatus.PENDING, 1, "SMTP 451")
    assert email.next_attempt_at is not None and email.next_attempt_at >= before + EMAIL_RETRY_DELAYS[0]
    email.next_attempt_at = before  # the retry is due
    assert await mail_worker(uow, mailer).send_due() == 0
    (email,) = uow.committed.emails.values()
    assert (email.status, email.attempts, email.last_error) == (EmailStatus.FAILED, 2, "SMTP 550")


async def test_the_owner_of_a_disabled_endpoint_is_told_by_email() -> None:
    uow = FakeUnitOfWork()
    endpoint_id = await registered(uow)
    await set_contacts(uow, CAMHS, ["it@camhs.example"])
    mailer = RecordingMailer()
    await mail_worker(uow, mailer).tell_endpoint_disabled(endpoint_id, CAMHS, "the endpoint answered 410 Gone")
    (message,) = mailer.sent
    assert message["To"] == "it@camhs.example"
    assert "the endpoint answered 410 Gone" in str(message.get_content())


# The fake unit of work itself


async def test_what_is_not_committed_is_rolled_back() -> None:
    uow = FakeUnitOfWork()
    async with uow:
        await uow.directory.record_organisation(OTHER, 1)
    assert uow.committed.organisations == {}
