"""Waitlists' clocks for the family view (``uk.send.waitlist.clocks_updated.v1``) share the alerts topic, but are
for the referrals service: no endpoint can subscribe to them, and an endpoint subscribed to everything gets none."""

from __future__ import annotations

from notifications.domain.endpoints import EndpointSpec
from notifications.domain.subscriptions import SUBSCRIBABLE_TYPES
from notifications.service_layer import endpoints
from notifications.service_layer.fanout import fan_out
from send_shared.events.envelope import CloudEvent

from .fakes import FakeUnitOfWork

CLOCKS_UPDATED = "uk.send.waitlist.clocks_updated.v1"


def clocks_event() -> CloudEvent:
    return CloudEvent(
        type=CLOCKS_UPDATED, source="/send/waitlists", subject="r1",
        data={"referral_id": "r1", "referral_version": 1, "service_id": "svc-camhs", "receiving_org_id": "org-camhs",
              "referrer_org_id": "org-school",
              "clocks": [{"clock": "cypmh_4w", "target_days": 28, "start_date": "2026-01-05", "state": "running",
                          "breach_date": "2026-02-03", "stopped_on": None, "exception": False}]},
    )  # fmt: skip


def test_no_endpoint_may_subscribe_to_the_clocks() -> None:
    assert CLOCKS_UPDATED not in SUBSCRIBABLE_TYPES
    assert "uk.send.waitlist.clock_breached.v1" in SUBSCRIBABLE_TYPES  # the alerts on the same topic still are


async def test_the_clocks_reach_no_endpoint_and_no_inbox() -> None:
    uow = FakeUnitOfWork()
    for org in ("org-school", "org-camhs"):
        await endpoints.register(uow, org, EndpointSpec(f"http://127.0.0.1:9/{org}", ("*",), (), (), ""),
                                 policy=endpoints.UrlPolicy(require_https=False, allow_private=True))  # fmt: skip
    async with uow:
        assert await fan_out(clocks_event(), uow, referral_link_template="http://x/{referral_id}") == 0
        await uow.commit()
    assert uow.committed.deliveries == {}
    assert uow.committed.messages == {}
    assert uow.committed.emails == {}
