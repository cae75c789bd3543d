"""Webhook delivery against a real local receiver: signatures, order, retries, disabling, isolation, restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from notifications.adapters.orm import deliveries
from notifications.adapters.webhook_client import WebhookClient
from notifications.service_layer.dispatcher import Dispatcher
from notifications.service_layer.mail import MailWorker
from send_devkit.smtp_sink import SmtpSink
from send_devkit.webhook_receiver import Received, Receiver
from send_shared.events.schemas import ReferralEventV1
from send_shared.events.webhooks import StructuredEvent
from send_shared.smtp import SmtpMailer

from .conftest import CAMHS, OTHER, SCHOOL, bearer, consume, referral_event

FAST = [timedelta(milliseconds=50)] * 7


async def register(
    api: httpx.AsyncClient, receiver: Receiver, path: str, org: str = CAMHS, **extra: Any
) -> dict[str, Any]:
    body = {"url": f"{receiver.base}{path}", "event_types": ["uk.send.referral.*"], **extra}
    response = await api.post("/v1/endpoints", json=body, headers=bearer(org))
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secrets[path] = created["secret"]
    return created


@asynccontextmanager
async def dispatching(app: Any, *, timeout: float = 15.0, delays: list[timedelta] = FAST) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(
        app.state.unit_of_work,
        lambda: WebhookClient(require_https=False, allow_private=True, timeout=timeout),
        poll_interval=0.05,
        retry_delays=delays,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


def heard(receiver: Receiver, path: str, referral_id: str) -> list[Received]:
    """What ``path`` received (and verified) about ``referral_id``."""
    return [r for r in receiver.received if r.path == path and r.body.get("data", {}).get("referral_id") == referral_id]


async def test_signed_events_arrive_verified_and_in_order(app: Any, api: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint = await register(api, receiver, "/camhs")
    events = [
        referral_event("r1", v, s) for v, s in enumerate(["submitted", "accepted", "scheduled", "in_progress"], 1)
    ]
    await consume(app, *events)
    async with dispatching(app):
        await until(lambda: len(receiver.successes("/camhs")) == 4, "four deliveries")
    got = receiver.successes("/camhs")
    assert all(r.verified for r in got), "the standardwebhooks library must accept every signature"
    assert [r.body["data"]["version"] for r in got] == [1, 2, 3, 4]
    assert [r.webhook_id for r in got] == [f"msg_{e.id}" for e in events]
    for r in got:  # every body is what the published contract (OpenAPI webhooks, AsyncAPI) says
        StructuredEvent[ReferralEventV1].model_validate(r.body)
    first = got[0].body
    assert first["specversion"] == "1.0" and first["type"] == "uk.send.referral.submitted.v1"
    assert first["referrallink"] == "http://referrals.test/v1/referrals/r1"
    log = (await api.get(f"/v1/endpoints/{endpoint['id']}/deliveries", headers=bearer(CAMHS))).json()
    assert [d["status"] for d in log] == ["succeeded"] * 4
    assert log[0]["attempt_log"][0]["status_code"] == 200


async def test_a_failing_receiver_gets_the_message_once_after_retries(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(api, receiver, "/flaky")
    receiver.script["/flaky"] = [500, ("sleep", 1.5, 504), ("status", 429, {"retry-after": "1"}), 200]
    await consume(app, referral_event("r2", 1, "submitted"))
    started = time.monotonic()
    async with dispatching(app, timeout=1.0):
        await until(lambda: len(receiver.successes("/flaky")) == 1, "one success")
        took = time.monotonic() - started
        await consume(app, referral_event("r2-later", 1, "submitted"))
        await until(lambda: bool(heard(receiver, "/flaky", "r2-later")), "a later event delivered after the success")
    assert took >= 1.0, "Retry-After: 1 was honoured"
    assert [r.answered for r in heard(receiver, "/flaky", "r2")].count(200) == 1, "r2 arrived once"
    log = (await api.get(f"/v1/endpoints/{endpoint['id']}/deliveries", headers=bearer(CAMHS))).json()
    r2 = log[-1]  # the oldest delivery (the log is newest first)
    assert [a["status_code"] for a in r2["attempt_log"]] == [500, None, 429, 200]
    assert "timeout" in r2["attempt_log"][1]["error"]


async def test_retry_now_delivers_at_once_what_waited_hours_for_its_retry(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(api, receiver, "/fixed")
    receiver.script["/fixed"] = [503]  # broken once, then fixed
    await consume(app, referral_event("r-fixed", 1, "submitted"))
    path = f"/v1/endpoints/{endpoint['id']}"
    # The API wakes the app's dispatcher; this one would otherwise look again only after a minute.
    dispatcher = Dispatcher(
        app.state.unit_of_work, lambda: WebhookClient(require_https=False, allow_private=True, timeout=5),
        poll_interval=60, retry_delays=[timedelta(hours=2)] * 7,
    )  # fmt: skip
    app.state.dispatcher = dispatcher
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await until(lambda: len(receiver.received) == 1, "the first attempt fails")
        for _ in range(100):  # until the failed attempt is recorded
            [waiting] = (await api.get(f"{path}/deliveries", headers=bearer(CAMHS))).json()
            if waiting["attempts"]:
                break
            await asyncio.sleep(0.05)
        assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
        made_due = await api.post(f"{path}/retry-now", headers=bearer(CAMHS))
        assert (made_due.status_code, made_due.json()) == (200, {"made_due": 1})
        await until(lambda: len(receiver.successes("/fixed")) == 1, "delivered at once, not in 2 hours", timeout=10)
    finally:
        stop.set()
        dispatcher.wake.set()
        await asyncio.wait_for(task, 30)
    again = await api.post(f"{path}/retry-now", headers=bearer(CAMHS))
    assert again.json() == {"made_due": 0}
    foreign = await api.post(f"{path}/retry-now", headers=bearer(OTHER, "referrer"))
    assert foreign.status_code == 404


async def test_410_gone_disables_the_endpoint(app: Any, api: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint = await register(api, receiver, "/gone")
    await register(api, receiver, "/witness")
    receiver.script["/gone"] = [410]
    await consume(app, referral_event("r3", 1, "submitted"), referral_event("r3", 2, "accepted"))
    async with dispatching(app):
        await until(lambda: len(heard(receiver, "/witness", "r3")) == 2, "both versions at a healthy endpoint")
        await until(lambda: len(receiver.received) == 3, "one attempt at the gone endpoint")
        await consume(app, referral_event("r3-later", 1, "submitted"))
        await until(lambda: bool(heard(receiver, "/witness", "r3-later")), "a later event delivered after the 410")
    state = (await api.get(f"/v1/endpoints/{endpoint['id']}", headers=bearer(CAMHS))).json()
    assert (state["status"], state["disabled_reason"]) == ("disabled", "the endpoint answered 410 Gone")
    assert [r.body["data"]["version"] for r in receiver.received if r.path == "/gone"] == [1]


async def test_a_stuck_endpoint_does_not_delay_a_healthy_one(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(api, receiver, "/stuck")
    await register(api, receiver, "/healthy")
    receiver.script["/stuck"] = [("sleep", 4)] * 10
    await consume(app, *[referral_event(f"r4-{i}", 1, "submitted") for i in range(5)])
    async with dispatching(app, timeout=3.0):
        started = time.monotonic()
        await until(lambda: len(receiver.successes("/healthy")) == 5, "healthy endpoint served")
        took = time.monotonic() - started
    # The stuck endpoint's first attempt times out after 3 s; the healthy one was served before that.
    assert took < 3.0, f"the healthy endpoint waited {took:.1f}s behind the stuck one"


async def test_an_endpoint_hears_only_about_its_own_organisations_referrals(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(api, receiver, "/other", org=OTHER, event_types=["*"])
    await register(api, receiver, "/school", org=SCHOOL, role="referrer") if False else None
    await register(api, receiver, "/camhs-core", service_ids=["svc-camhs-core"])
    await register(api, receiver, "/camhs-ed", service_ids=["svc-camhs-eating-disorders"])
    await consume(app, referral_event("r5", 1, "submitted"))
    async with app.state.runtime.engine.connect() as conn:
        targets = (
            await conn.execute(select(deliveries.c.endpoint_id, func.count()).group_by(deliveries.c.endpoint_id))
        ).all()
    assert len(targets) == 1, "only the CAMHS endpoint whose filter matches may receive it"
    async with dispatching(app):
        await until(lambda: len(receiver.successes("/camhs-core")) == 1, "delivered to CAMHS")
        # A later referral that concerns the other school and the eating disorders service reaches both.
        await consume(
            app, referral_event("r5-later", 1, "submitted", referrer=OTHER, service="svc-camhs-eating-disorders")
        )
        await until(
            lambda: bool(heard(receiver, "/other", "r5-later") and heard(receiver, "/camhs-ed", "r5-later")),
            "the later referral delivered to both",
        )
    assert not [
        r for r in receiver.received if r.path in ("/other", "/camhs-ed") and r.body["data"]["referral_id"] == "r5"
    ]


async def test_a_restart_mid_delivery_loses_nothing_and_repeats_only_the_same_message(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(api, receiver, "/slow")
    receiver.script["/slow"] = [("sleep", 0.3)] * 30
    events = [referral_event(f"r6-{i}", 1, "submitted") for i in range(8)]
    await consume(app, *events)
    first = Dispatcher(
        app.state.unit_of_work,
        lambda: WebhookClient(require_https=False, allow_private=True),
        poll_interval=0.05,
        retry_delays=FAST,
    )
    task = asyncio.create_task(first.run(asyncio.Event()))
    await until(lambda: len(receiver.received) >= 2, "some deliveries under way")
    task.cancel()  # killed mid-delivery: no orderly shutdown
    await asyncio.gather(task, return_exceptions=True)
    async with dispatching(app):
        await until(
            lambda: {r.webhook_id for r in receiver.successes("/slow")} == {f"msg_{e.id}" for e in events}, "all"
        )
    async with app.state.runtime.engine.connect() as conn:
        done = (await conn.execute(select(deliveries.c.event_id, deliveries.c.status))).all()
    assert sorted(e for e, s in done if s == "succeeded") == sorted(e.id for e in events), "each succeeded exactly once"
    assert all(r.verified for r in receiver.received)


async def test_secret_rotation_signs_with_both_secrets_during_the_grace(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(api, receiver, "/rotating")
    old = endpoint["secret"]
    rotated = (await api.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", headers=bearer(CAMHS))).json()
    assert rotated["secret"] != old and rotated["secret"].startswith("whsec_")
    assert "secret" not in (await api.get(f"/v1/endpoints/{endpoint['id']}", headers=bearer(CAMHS))).json()
    receiver.secrets["/rotating"] = old  # a receiver not yet updated still verifies
    await consume(app, referral_event("r7", 1, "submitted"))
    async with dispatching(app):
        await until(lambda: len(receiver.successes("/rotating")) == 1, "delivered")
    assert receiver.received[0].verified
    signature = receiver.received[0]
    assert signature.body["data"]["referral_id"] == "r7"
    assert Webhook(rotated["secret"])  # the new secret is a valid Standard Webhooks secret


async def test_ping_pause_resume_redeliver_and_foreign_access(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(api, receiver, "/ops")
    path = f"/v1/endpoints/{endpoint['id']}"
    assert (await api.get(path, headers=bearer(OTHER))).status_code == 404
    assert (await api.post(f"{path}/pause", headers=bearer(OTHER))).status_code == 404
    assert (await api.post(f"{path}/test", headers=bearer(CAMHS))).status_code == 202
    assert (await api.post(f"{path}/pause", headers=bearer(CAMHS))).json()["status"] == "paused"
    await register(api, receiver, "/ops-witness")
    await consume(app, referral_event("r8", 1, "submitted"))
    async with dispatching(app):
        await until(lambda: bool(heard(receiver, "/ops-witness", "r8")), "delivered to an active endpoint")
        assert [r for r in receiver.received if r.path == "/ops"] == [], "paused: nothing goes out"
        assert (await api.post(f"{path}/resume", headers=bearer(CAMHS))).json()["status"] == "active"
        await until(lambda: len(receiver.successes("/ops")) == 2, "ping and event after resume")
        log = (await api.get(f"{path}/deliveries", headers=bearer(CAMHS))).json()
        assert {d["event_type"] for d in log} == {"uk.send.webhook.ping.v1", "uk.send.referral.submitted.v1"}
        again = await api.post(f"{path}/deliveries/{log[0]['id']}/redeliver", headers=bearer(CAMHS))
        assert again.status_code == 202
        await until(lambda: len(receiver.successes("/ops")) == 3, "redelivered")
        since = await api.post(f"{path}/redeliver", json={"since": "2020-01-01T00:00:00Z"}, headers=bearer(CAMHS))
        assert since.json() == {"queued": 2}
        await until(lambda: len(receiver.successes("/ops")) == 5, "redelivered since")
    ids = [r.webhook_id for r in receiver.successes("/ops")]
    assert len(set(ids)) == 2, "a redelivery keeps its webhook-id"
    assert (await api.delete(path, headers=bearer(CAMHS))).status_code == 204
    assert (await api.get(path, headers=bearer(CAMHS))).status_code == 404


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest", "https://[::1]/hook",
     "https://localhost/hook", "https://192.168.0.10/x", "http://example.org/hook", "https://user:pw@example.org/"],
)  # fmt: skip
async def test_unsafe_targets_are_refused_in_production_mode(app: Any, url: str) -> None:
    from notifications.domain.endpoints import EndpointSpec
    from notifications.domain.subscriptions import UnsafeTarget
    from notifications.service_layer.endpoints import UrlPolicy, register

    with pytest.raises(UnsafeTarget):
        await register(
            app.state.unit_of_work(), CAMHS, EndpointSpec(url, ("*",), (), (), ""), policy=UrlPolicy(True, False)
        )


async def test_bad_endpoint_input_is_a_problem(api: httpx.AsyncClient) -> None:
    for body in ({"url": "not a url", "event_types": ["*"]}, {"url": "https://example.org", "event_types": []},
                 {"url": "https://example.org", "event_types": ["drop table"]}):  # fmt: skip
        response = await api.post("/v1/endpoints", json=body, headers=bearer(CAMHS))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert (await api.post("/v1/endpoints", json={}, headers=bearer(CAMHS, "ops"))).status_code == 403


async def test_emails_go_to_the_referrers_contacts_through_smtp(
    app: Any, api: httpx.AsyncClient, tmp_path: Any
) -> None:
    put = await api.put("/v1/contacts", json={"emails": ["senco@school.example"]}, headers=bearer(SCHOOL, "referrer"))
    assert put.status_code == 200
    await consume(app, referral_event("r9", 1, "submitted"), referral_event("r9", 2, "accepted"))
    with SmtpSink(tmp_path / "mail") as sink:
        mailer = SmtpMailer(host="127.0.0.1", port=sink.port, username=None, password=None, starttls=False, timeout=5)
        worker = MailWorker(app.state.unit_of_work, mailer, mail_from="SEND <no-reply@send.test>",
                            referral_url="http://referrals.test/v1/referrals/{referral_id}")  # fmt: skip
        assert await worker.send_due() == 1
        (eml,) = sink.messages()
    message = message_from_bytes(eml.read_bytes())
    assert message["To"] == "senco@school.example"
    assert "accepted" in message["Subject"].lower() and "r9" in message["Subject"]


async def test_five_days_of_failure_disables_the_endpoint_and_tells_its_owner(
    app: Any, api: httpx.AsyncClient, receiver: Receiver, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from notifications.adapters.orm import endpoints
    from notifications.bootstrap import build_app
    from notifications.settings import NotificationsSettings

    endpoint = await register(api, receiver, "/dead")
    await api.put("/v1/contacts", json={"emails": ["it@camhs.example"]}, headers=bearer(CAMHS))
    async with app.state.runtime.engine.begin() as conn:
        await conn.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint["id"])
            .values(failing_since=datetime.now(UTC) - timedelta(days=5, minutes=1))
        )
    receiver.script["/dead"] = [500]
    await consume(app, referral_event("r10", 1, "submitted"))
    with SmtpSink(tmp_path / "mail") as sink:
        settings = app.state.runtime.settings.model_copy(update={"smtp_port": sink.port})
        service = build_app(NotificationsSettings.model_validate(settings.model_dump()))
        async with dispatching(app) as dispatcher:
            dispatcher.on_disabled = service.state.dispatcher.on_disabled  # the service's own owner notice
            await until(lambda: bool(sink.messages()), "the owner told by email")
        await service.state.runtime.engine.dispose()
        (eml,) = sink.messages()
    state = (await api.get(f"/v1/endpoints/{endpoint['id']}", headers=bearer(CAMHS))).json()
    assert (state["status"], state["disabled_reason"]) == ("disabled", "failing without a success for 5 days")
    message = message_from_bytes(eml.read_bytes())
    assert message["To"] == "it@camhs.example"
    assert "disabled" in message["Subject"]
    assert endpoint["url"] in message.get_payload()
