"""The consumer of waitlists' topic keeps each referral's clocks (entrypoints/consumers.py): the newest
referral version wins, waitlists' breach alerts are not its business, and a payload that breaks the contract is
never retried."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from referrals.entrypoints.consumers import on_waitlists_event
from send_shared.events.envelope import CloudEvent

from .fakes import FakeReferralClocks, FakeState

CLOCKS_UPDATED = "uk.send.waitlist.clocks_updated.v1"


def told(version: int, state: str, referral_id: str = "r1", **data: Any) -> CloudEvent:
    body = {
        "referral_id": referral_id, "referral_version": version, "service_id": "svc-ehc",
        "receiving_org_id": "org-la", "referrer_org_id": "org-school",
        "clocks": [{"clock": "ehc_decision_6w", "target_days": 42, "start_date": "2026-01-20", "state": state,
                    "breach_date": "2026-03-04" if state == "running" else None,
                    "stopped_on": "2026-02-20" if state == "met" else None, "exception": False}],
    } | data  # fmt: skip
    return CloudEvent(type=CLOCKS_UPDATED, source="/send/waitlists", subject=referral_id, data=body)


async def test_the_clocks_of_the_newest_version_are_kept_and_older_ones_ignored() -> None:
    state = FakeState()
    repository = FakeReferralClocks(state)
    await on_waitlists_event(told(1, "running"), repository)
    found = await repository.clocks_of(["r1", "r2"])
    assert list(found) == ["r1"]
    assert [(c.clock, c.state, c.breach_date) for c in found["r1"]] == [
        ("ehc_decision_6w", "running", date(2026, 3, 4))
    ]

    await on_waitlists_event(told(3, "met"), repository)
    await on_waitlists_event(told(2, "running"), repository)  # older, arriving late: ignored
    found = await repository.clocks_of(["r1"])
    assert [(c.state, c.stopped_on) for c in found["r1"]] == [("met", date(2026, 2, 20))]
    assert state.clocks["r1"].referral_version == 3

    await on_waitlists_event(told(3, "running", clocks=[]), repository)  # the same version told again: the later wins
    assert await repository.clocks_of(["r1"]) == {"r1": []}


async def test_breach_alerts_on_the_same_topic_are_not_kept() -> None:
    state = FakeState()
    alert = CloudEvent(
        type="uk.send.waitlist.clock_breached.v1", source="/send/waitlists", subject="r1",
        data={"referral_id": "r1", "clock": "cypmh_4w", "service_id": "svc", "receiving_org_id": "org-a",
              "referrer_org_id": "org-b", "target_days": 28, "start_date": "2026-01-05",
              "breach_date": "2026-02-03", "waiting_days": 29, "raised_on": "2026-02-03"},
    )  # fmt: skip
    await on_waitlists_event(alert, FakeReferralClocks(state))
    assert state.clocks == {}


async def test_a_payload_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValidationError):
        await on_waitlists_event(told(0, "running"), FakeReferralClocks(FakeState()))  # versions start at 1
