"""The referrals service's signposts (issue 18: support while waiting) are webhooks for the referral's two parties:
``uk.send.referral.signposted.v1`` and ``uk.send.referral.signpost_taken_up.v1`` reach the referrer's and the
receiver's endpoints, and nobody else's."""

from __future__ import annotations

from notifications.domain.endpoints import EndpointSpec
from notifications.domain.subscriptions import SUBSCRIBABLE_TYPES
from notifications.service_layer import endpoints
from notifications.service_layer.fanout import fan_out
from send_shared.events.envelope import CloudEvent

from .fakes import FakeUnitOfWork

SIGNPOSTED = "uk.send.referral.signposted.v1"
TAKEN_UP = "uk.send.referral.signpost_taken_up.v1"
PARTIES = {"referrer_org_id": "org-school", "service_id": "svc-camhs", "receiving_org_id": "org-camhs"}


def signposted() -> CloudEvent:
    return CloudEvent(
        type=SIGNPOSTED, source="/send/referrals", subject="r1",
        data={"referral_id": "r1", **PARTIES, "trigger": "clock_breach_imminent", "offer_ids": ["io-a"],
              "provider_org_ids": ["org-voice"], "primary_need": "SEMH", "occurred_at": "2026-03-02T09:30:00Z"},
    )  # fmt: skip


def taken_up() -> CloudEvent:
    return CloudEvent(
        type=TAKEN_UP, source="/send/referrals", subject="r1",
        data={"referral_id": "r1", **PARTIES, "offer_id": "io-a", "provider_org_id": "org-voice",
              "recorded_by": "family", "occurred_at": "2026-03-03T09:30:00Z"},
    )  # fmt: skip


def test_endpoints_may_subscribe_to_signposts() -> None:
    assert {SIGNPOSTED, TAKEN_UP} <= SUBSCRIBABLE_TYPES


async def test_signposts_reach_the_referrer_and_the_receiver_only() -> None:
    uow = FakeUnitOfWork()
    for org in ("org-school", "org-camhs", "org-voice", "org-other"):
        await endpoints.register(uow, org, EndpointSpec(f"http://127.0.0.1:9/{org}", ("uk.send.referral.*",), (), (),
                                 ""), policy=endpoints.UrlPolicy(require_https=False, allow_private=True))  # fmt: skip
    async with uow:
        assert await fan_out(signposted(), uow, referral_link_template="http://x/{referral_id}") == 2
        assert await fan_out(taken_up(), uow, referral_link_template="http://x/{referral_id}") == 2
        await uow.commit()
    hearing = {uow.committed.endpoints[d.endpoint_id].organisation_id for d in uow.committed.deliveries.values()}
    assert hearing == {"org-school", "org-camhs"}
    assert len(uow.committed.deliveries) == 4
