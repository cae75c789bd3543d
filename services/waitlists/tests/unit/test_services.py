"""The use cases over the in-memory unit of work: projecting events, keeping the facts in step, raising alerts,
reporting and rebuilding, without a database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date

import pytest

from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.schemas import (
    ReferralStatus,
)
from waitlists.adapters.events import from_cloud_event
from waitlists.domain.alerts import AlertKind
from waitlists.domain.clocks import ClockKind
from waitlists.domain.scope import Scope
from waitlists.service_layer import rebuild as rebuilding
from waitlists.service_layer.alerting import raise_due_alerts
from waitlists.service_layer.projection import project_event, refresh_marked_facts
from waitlists.service_layer.replay import ReplayFold
from waitlists.service_layer.reporting import FigureRequest, UnknownScope, figures_for, referral_clocks

from .events import change, organisation, service
from .fake_unit_of_work import FakeProjectionStore, FakeUnitOfWork


async def project(uow: FakeUnitOfWork, *events: CloudEvent) -> None:
    for event in events:
        entry = from_cloud_event(event)
        assert entry is not None
        await project_event(uow, entry)


EVENTS = [
    organisation(1, "first"),
    organisation(1, "second"),  # the same version again: the first copy stays
    service(2, ["cypmh_4w"]),
    service(1, ["rtt_18w"]),  # older: never wins
    change("r1", 2, "accepted", "2026-01-12", urgency="urgent"),
    change("r1", 1, "submitted", "2026-01-05", urgency="routine"),  # fixed facts stay those of the first seen
    change("r1", 2, "rejected", "2026-01-13"),  # a repeated version keeps its first copy
    change("r2", 1, "submitted", "2026-01-21", service="svc-slt"),
    change("r2", 3, "in_progress", "2026-02-01", service="svc-slt"),  # arrives before version 2
    change("r2", 2, "accepted", "2026-01-25", service="svc-slt"),
]


async def test_the_live_projection_holds_what_the_rebuilds_fold_holds() -> None:
    uow = FakeUnitOfWork()
    await project(uow, *EVENTS)
    fold = ReplayFold()
    for event in EVENTS:
        fold.add(*encode_kafka(event))
    folded = fold.result()
    assert uow.referrals.held == folded.referrals
    assert uow.directory.services_held == folded.services
    assert uow.directory.organisations_held == folded.organisations
    r1 = uow.referrals.held["r1"]
    assert [(c.version, c.status) for c in r1.changes] == [(1, ReferralStatus.SUBMITTED), (2, ReferralStatus.ACCEPTED)]
    assert r1.urgency == "urgent"
    assert [c.version for c in uow.referrals.held["r2"].changes] == [1, 2, 3]
    assert uow.directory.services_held["svc-camhs"].clocks == ("cypmh_4w",)
    assert uow.directory.organisations_held["org-camhs"].name == "first"


async def test_an_event_marks_its_child_and_a_service_whose_clocks_change_marks_the_service() -> None:
    uow = FakeUnitOfWork()
    await project(uow, service(1, ["cypmh_4w"]), change("r1", 1, "submitted", "2026-01-05"))
    assert uow.take_marked() == ({"c1"}, {"svc-camhs"})  # a new service counts as changed
    await project(uow, service(2, ["cypmh_4w"]))  # a newer version, the same clocks
    assert uow.take_marked() == (set(), set())
    await project(uow, service(3, ["rtt_18w"]), service(2, ["cypmh_ed"]))  # the older one changes nothing
    assert uow.take_marked() == (set(), {"svc-camhs"})


async def test_the_facts_of_marked_children_are_derived_with_their_journeys() -> None:
    """c1 is rejected at CAMHS on 20 Jan and accepted at SLT on 25 Jan: a handoff gap of five days."""
    uow = FakeUnitOfWork()
    await project(
        uow,
        service(1, ["cypmh_4w"]),
        change("r1", 1, "submitted", "2026-01-05"),
        change("r1", 2, "rejected", "2026-01-20", reason_code="outside_remit"),
        change("r2", 1, "submitted", "2026-01-21", service="svc-slt"),
        change("r2", 2, "accepted", "2026-01-25", service="svc-slt"),
        change("r3", 1, "submitted", "2026-02-01", child="c2"),
        change("r3", 2, "entered_in_error", "2026-02-02", child="c2"),
    )
    await refresh_marked_facts(uow)
    assert set(uow.facts.held) == {"r1", "r2"}  # r3 was entered in error: out of every figure
    gap = uow.facts.held["r1"].gap
    assert gap is not None and (gap.opened_on, gap.closed_on) == (date(2026, 1, 20), date(2026, 1, 25))
    assert uow.take_marked() == (set(), set())

    await project(uow, service(2, ["rtt_18w"]))  # the service's clocks change: its referrals' facts follow
    await refresh_marked_facts(uow)
    assert [s.clock for s in uow.facts.held["r1"].clock_stops] == [ClockKind.RTT_18W]


async def test_breach_alerts_are_raised_once_each() -> None:
    """A 28-day clock from 5 Jan breaches on 3 Feb: imminent from 27 Jan, breached from 3 Feb."""
    uow = FakeUnitOfWork()
    await project(uow, service(1, ["cypmh_4w"]), change("r1", 1, "submitted", "2026-01-05"))
    await refresh_marked_facts(uow)

    async def scan(day: date) -> int:
        return await raise_due_alerts(uow, today=day, lead_days=7, source="/send/waitlists")

    assert [await scan(date(2026, 1, day)) for day in (20, 27, 28)] == [0, 1, 0]
    assert [await scan(date(2026, 2, day)) for day in (3, 4)] == [1, 0]
    kinds = [(alert.due.kind, alert.receiving_org_id, alert.referrer_org_id) for alert, _ in uow.alerts.published]
    assert kinds == [(AlertKind.IMMINENT, "org-camhs", "org-school"), (AlertKind.BREACHED, "org-camhs", "org-school")]


async def test_a_referrals_clocks_are_shown_to_its_two_parties_only() -> None:
    uow = FakeUnitOfWork()
    await project(uow, service(1, ["cypmh_4w"]), change("r1", 1, "submitted", "2026-01-05"))
    for viewer in ("org-school", "org-camhs"):
        found = await referral_clocks("r1", date(2026, 1, 10), uow, viewer=viewer)
        assert found is not None and [(c.kind, c.waiting_days) for c in found] == [(ClockKind.CYPMH_4W, 5)]
    assert await referral_clocks("r1", date(2026, 1, 10), uow, viewer="org-other") is None
    assert await referral_clocks("r9", date(2026, 1, 10), uow, viewer="org-school") is None


async def test_figures_add_up_a_scopes_services_and_an_unknown_scope_is_refused() -> None:
    uow = FakeUnitOfWork()
    await project(
        uow,
        organisation(1, "CAMHS"),
        service(1, ["cypmh_4w"]),
        service(1, ["cypmh_4w"], service_id="svc-slt"),
        change("r1", 1, "submitted", "2026-01-05"),
        change("r2", 1, "submitted", "2026-01-07", child="c2", service="svc-slt"),
        change("r3", 1, "submitted", "2026-01-08", child="c2"),
    )
    await refresh_marked_facts(uow)
    found = await figures_for(FigureRequest(Scope.ORGANISATION, "org-camhs", date(2026, 1, 10)), uow)
    assert found.waiting.waiting == 3
    assert found.children_on_several_lists == 1
    with pytest.raises(UnknownScope):
        await figures_for(FigureRequest(Scope.AREA, "la-nowhere", date(2026, 1, 10)), uow)


Add = Callable[[Sequence[tuple[str, bytes | None]], bytes | None], None]


def replay_of(events: list[CloudEvent]) -> Callable[..., Awaitable[None]]:
    async def read_replay(_bootstrap: str, _topic: str, add: Add, **_: object) -> None:
        for event in events:
            add(*encode_kafka(event))

    return read_replay


async def test_a_rebuild_puts_the_fold_in_place_unless_it_would_lose_referrals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rebuilding, "read_replay", replay_of(EVENTS))
    store = FakeProjectionStore(referrals_held=3)
    with pytest.raises(rebuilding.RebuildRefused):
        await rebuilding.rebuild(store, bootstrap_servers="-", reply_topic="-")
    assert store.replacements == []
    report = await rebuilding.rebuild(store, bootstrap_servers="-", reply_topic="-", allow_fewer=True)
    assert (report.events, report.skipped, report.referrals) == (len(EVENTS), 0, 2)
    (held,) = store.replacements
    assert set(held.referrals) == {"r1", "r2"}
