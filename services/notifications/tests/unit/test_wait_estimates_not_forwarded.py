"""Waitlists' wait estimates (``uk.send.waitlist.wait_estimate.v1``) share the alerts topic, but are for the
referrals service: no endpoint can subscribe to them, and an endpoint subscribed to everything gets none."""

from __future__ import annotations

from notifications.domain.endpoints import EndpointSpec
from notifications.domain.subscriptions import SUBSCRIBABLE_TYPES
from notifications.service_layer import endpoints
from notifications.service_layer.fanout import fan_out
from send_shared.events.envelope import CloudEvent

from .fakes import FakeUnitOfWork

WAIT_ESTIMATE = "uk.send.waitlist.wait_estimate.v1"


def estimate_event() -> CloudEvent:
    return CloudEvent(
        type=WAIT_ESTIMATE, source="/send/waitlists", subject="svc-camhs",
        data={"service_id": "svc-camhs", "as_of": "2026-12-01", "window_weeks": 26, "children": 40,
              "enough_data": True, "to_support_median_days": 30, "to_support_p90_days": 80,
              "to_support_p90_low_days": 70, "to_support_p90_high_days": 95, "to_clock_stop_median_days": 20,
              "to_clock_stop_p90_days": 40},
    )  # fmt: skip


def test_no_endpoint_may_subscribe_to_the_estimates() -> None:
    assert WAIT_ESTIMATE not in SUBSCRIBABLE_TYPES
    assert "uk.send.waitlist.clock_breach_imminent.v1" in SUBSCRIBABLE_TYPES


async def test_the_estimates_reach_no_endpoint_and_no_inbox() -> None:
    uow = FakeUnitOfWork()
    for org in ("org-school", "org-camhs"):
        await endpoints.register(uow, org, EndpointSpec(f"http://127.0.0.1:9/{org}", ("*",), (), (), ""),
                                 policy=endpoints.UrlPolicy(require_https=False, allow_private=True))  # fmt: skip
    async with uow:
        assert await fan_out(estimate_event(), uow, referral_link_template="http://x/{referral_id}") == 0
        await uow.commit()
    assert uow.committed.deliveries == {}
    assert uow.committed.messages == {}
    assert uow.committed.emails == {}
