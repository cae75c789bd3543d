"""Clocks told to other services (``uk.send.waitlist.clocks_updated.v1``) as the projection refreshes the facts:
each referral's clocks as of its newest change, told only when they differ from those told last.

The expected dates are worked out by hand from the brief's rules: a clock with target T started on S breaches on
S + T + 1 days (plus the days paused before it)."""

from __future__ import annotations

from datetime import date

from send_shared.events.envelope import CloudEvent
from waitlists.adapters.events import from_cloud_event
from waitlists.service_layer.projection import project_event, refresh_marked_facts

from .events import change, service
from .fake_unit_of_work import FakeUnitOfWork

EHC = ["ehc_decision_6w", "ehc_plan_20w"]


async def step(uow: FakeUnitOfWork, *events: CloudEvent) -> list[tuple[str, int, list[tuple[object, ...]]]]:
    """Projects the events as one transaction, refreshes, and returns what was told in it."""
    before = len(uow.clock_updates.published)
    for event in events:
        entry = from_cloud_event(event)
        assert entry is not None
        await project_event(uow, entry)
    await refresh_marked_facts(uow, source="/send/waitlists-test")
    told = uow.clock_updates.published[before:]
    assert all(source == "/send/waitlists-test" for _, source in told)
    return [
        (u.clocks.referral_id, u.clocks.referral_version,
         [(c.clock, c.state, c.start_date, c.breach_date, c.stopped_on, c.exception) for c in u.clocks.clocks])
        for u, _ in told
    ]  # fmt: skip


async def test_an_ehc_referral_is_told_its_deadlines_then_only_what_changes() -> None:
    uow = FakeUnitOfWork()
    await step(uow, service(1, EHC))
    s = date(2026, 1, 5)
    # 6 weeks: 5 Jan + 43 days = 17 Feb; 20 weeks: 5 Jan + 141 days = 26 May.
    assert await step(uow, change("r1", 1, "submitted", "2026-01-05")) == [
        ("r1", 1, [("ehc_decision_6w", "running", s, date(2026, 2, 17), None, False),
                   ("ehc_plan_20w", "running", s, date(2026, 5, 26), None, False)]),
    ]  # fmt: skip
    update = uow.clock_updates.published[0][0]
    assert (update.parties.referrer_org_id, update.parties.receiving_org_id) == ("org-school", "org-camhs")
    assert update.clocks.service_id == "svc-camhs"

    assert await step(uow, change("r1", 2, "acknowledged", "2026-01-07")) == []  # no clock changed
    assert await step(uow, change("r1", 2, "acknowledged", "2026-01-07")) == []  # the same event again

    assert await step(uow, change("r1", 3, "accepted", "2026-02-10")) == [
        ("r1", 3, [("ehc_decision_6w", "met", s, None, date(2026, 2, 10), False),
                   ("ehc_plan_20w", "running", s, date(2026, 5, 26), None, False)]),
    ]  # fmt: skip
    # An exception hold marks the EHC clocks (they never pause); the dates stay.
    assert await step(uow, change("r1", 4, "on_hold", "2026-03-02", reason_code="school_closed_4_weeks")) == [
        ("r1", 4, [("ehc_decision_6w", "met", s, None, date(2026, 2, 10), False),
                   ("ehc_plan_20w", "running", s, date(2026, 5, 26), None, True)]),
    ]  # fmt: skip


async def test_late_paused_and_ended_clocks() -> None:
    uow = FakeUnitOfWork()
    await step(uow, service(1, ["cypmh_4w"]))
    s = date(2026, 1, 5)
    told = await step(
        uow,
        change("late", 1, "submitted", "2026-01-05"),
        change("late", 2, "in_progress", "2026-03-02"),  # 4 weeks: 5 Jan + 29 days = 3 Feb
        change("paused", 1, "submitted", "2026-01-05", child="c2"),
        change("paused", 2, "on_hold", "2026-01-10", child="c2", reason_code="family_unavailable"),
        change("ended", 1, "submitted", "2026-01-05", child="c3"),
        change("ended", 2, "withdrawn", "2026-01-20", child="c3", reason_code="family_request"),
    )
    assert sorted(told) == [
        ("ended", 2, [("cypmh_4w", "ended", s, None, date(2026, 1, 20), False)]),
        ("late", 2, [("cypmh_4w", "late", s, date(2026, 2, 3), date(2026, 3, 2), False)]),
        ("paused", 2, [("cypmh_4w", "paused", s, None, None, False)]),
    ]
    # Back from the hold on 20 Jan after 10 days paused: the breach date moves 10 days, to 13 Feb.
    assert await step(uow, change("paused", 3, "scheduled", "2026-01-20", child="c2")) == [
        ("paused", 3, [("cypmh_4w", "running", s, date(2026, 2, 13), None, False)]),
    ]
    # Still waiting past the breach date when the next change comes: late, and the date stays.
    assert await step(uow, change("paused", 4, "on_hold", "2026-02-20", child="c2",
                                  reason_code="family_unavailable")) == [
        ("paused", 4, [("cypmh_4w", "late", s, date(2026, 2, 13), None, False)]),
    ]  # fmt: skip


async def test_a_referral_at_a_service_without_clocks_is_told_nothing() -> None:
    uow = FakeUnitOfWork()
    await step(uow, service(1, [], service_id="svc-slt"))
    assert await step(uow, change("r1", 1, "submitted", "2026-01-05", service="svc-slt")) == []
    assert await step(uow, change("r1", 2, "accepted", "2026-01-08", service="svc-slt")) == []
    assert uow.clock_updates.fingerprints == {}


async def test_a_service_that_changes_its_clocks_has_its_referrals_told_again_and_a_refresh_tells_nothing_new() -> None:
    uow = FakeUnitOfWork()
    await step(uow, service(1, ["cypmh_4w"]))
    await step(uow, change("r1", 1, "submitted", "2026-01-05"), change("r2", 1, "submitted", "2026-01-06", child="c2"))
    assert len(uow.clock_updates.published) == 2
    # RTT 18 weeks: 126 days; 5 Jan + 127 days = 12 May, 6 Jan + 127 = 13 May.
    assert sorted(await step(uow, service(2, ["rtt_18w"]))) == [
        ("r1", 1, [("rtt_18w", "running", date(2026, 1, 5), date(2026, 5, 12), None, False)]),
        ("r2", 1, [("rtt_18w", "running", date(2026, 1, 6), date(2026, 5, 13), None, False)]),
    ]
    uow.mark_child("c1")
    uow.mark_child("c2")
    assert await step(uow) == []  # derived again, nothing differs
    # A service that stops running clocks: its referrals are told they have none.
    assert sorted(await step(uow, service(3, []))) == [("r1", 1, []), ("r2", 1, [])]
    assert await step(uow, change("r1", 2, "accepted", "2026-01-09")) == []
