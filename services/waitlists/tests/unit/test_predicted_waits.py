"""Predicted waits over the in-memory unit of work: which referrals count and how (events, censoring), what a
past ``as_of`` sees, the threshold, the API, and the estimate event. Expected figures are worked by hand below."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI

from send_shared.auth import Principal, Role, current_principal, organisation_lookup
from send_shared.events.envelope import CloudEvent
from send_shared.web.problems import install_problem_handlers
from waitlists.domain.waits import WaitPolicy
from waitlists.entrypoints.dependencies import unit_of_work, wait_policy
from waitlists.entrypoints.routers import ROUTERS
from waitlists.service_layer.projection import refresh_marked_facts
from waitlists.service_layer.waits import refresh_estimates, service_estimate

from .events import change, organisation, service
from .fake_unit_of_work import FakeUnitOfWork
from .test_services import project

SUBMITTED = date(2026, 1, 5)


def day(n: int) -> str:
    return (SUBMITTED + timedelta(days=n)).isoformat()


def scenario() -> list[CloudEvent]:
    """22 referrals count, all submitted 5 Jan 2026 to svc-camhs (clock cypmh_4w, which stops when support starts):
    r1..r18 start support after 2, 4, ..., 36 days; r19, r20 after 40 and 42; r21 is rejected on day 10;
    r24 starts on 10 March, after the as_of of 1 March (day 55). r22 was entered in error and r23 is submitted
    after as_of: neither counts."""
    found = [organisation(1, "CAMHS"), service(1, ["cypmh_4w"])]
    starts = {i: 2 * i for i in range(1, 19)} | {19: 40, 20: 42, 24: 64}
    for i, after in starts.items():
        found += [change(f"r{i}", 1, "submitted", day(0), child=f"c{i}"),
                  change(f"r{i}", 2, "accepted", day(0), child=f"c{i}"),
                  change(f"r{i}", 3, "in_progress", day(after), child=f"c{i}")]  # fmt: skip
    found += [
        change("r21", 1, "submitted", day(0), child="c21"),
        change("r21", 2, "rejected", day(10), child="c21", reason_code="outside_remit"),
        change("r22", 1, "submitted", day(0), child="c22"),
        change("r22", 2, "in_progress", day(1), child="c22"),
        change("r22", 3, "entered_in_error", day(3), child="c22"),
        change("r23", 1, "submitted", "2026-03-05", child="c23"),
    ]
    return found


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    await project(uow, *scenario())
    await refresh_marked_facts(uow)
    return uow


async def test_the_estimate_on_1_march_worked_by_hand(uow: FakeUnitOfWork) -> None:
    """Events at days 2, 4, ..., 36, 40, 42; censored: r21 at 10 (its rejection), r24 at 55 (waiting on 1 March).
    Days 2..8: S = 21/22, 20/22, 19/22, 18/22. Day 10: 18 at risk (r21's censoring counts at risk), S = 17/22;
    then 16 at risk. After k more events S = 17/22 * (16 - k)/16: k = 5 (day 20) 0.531, k = 6 (day 22) 0.483, so
    the median is 22; k = 13 (day 36) 0.145, k = 14 (day 40) 0.097 <= 0.1, so the p90 is 40. The clock stops
    when support starts (and ends neither met nor late at the rejection), so the same to the clock's stop."""
    found, organisation_id = await service_estimate("svc-camhs", date(2026, 3, 1), uow, WaitPolicy(26, 20))
    assert organisation_id == "org-camhs"
    assert (found.children, found.enough_data, found.clock) == (22, True, "cypmh_4w")
    assert (found.to_support.median_days, found.to_support.p90_days) == (22, 40)
    assert found.to_clock_stop is not None
    assert (found.to_clock_stop.median_days, found.to_clock_stop.p90_days) == (22, 40)
    low, high = found.to_support.p90_low_days, found.to_support.p90_high_days
    assert low is not None and low <= 40 and (high is None or high >= 40)


async def test_a_past_as_of_sees_only_what_had_happened_by_then(uow: FakeUnitOfWork) -> None:
    """On 25 January (day 20) only the starts at days 2..20 had happened: S after day 20 = 17/22 * 11/16 = 0.531,
    so no median yet, and the 22 referrals are the same (all submitted on 5 January)."""
    found, _ = await service_estimate("svc-camhs", date(2026, 1, 25), uow, WaitPolicy(26, 20))
    assert (found.children, found.enough_data) == (22, True)
    assert (found.to_support.median_days, found.to_support.p90_days) == (None, None)
    before, _ = await service_estimate("svc-camhs", date(2026, 1, 4), uow, WaitPolicy(26, 20))
    assert before.children == 0 and not before.enough_data


async def test_below_the_threshold_there_are_no_figures(uow: FakeUnitOfWork) -> None:
    found, _ = await service_estimate("svc-camhs", date(2026, 3, 1), uow, WaitPolicy(26, 23))
    assert (found.children, found.enough_data) == (22, False)
    assert found.to_support.median_days is None and found.to_support.p90_days is None
    assert found.to_clock_stop is not None and found.to_clock_stop.median_days is None
    outside, _ = await service_estimate("svc-camhs", date(2026, 9, 1), uow, WaitPolicy(26, 20))
    # 26 weeks (182 days) ending on 1 September start on 4 March: 5 January is outside, and r23 (submitted
    # 5 March) is the only one inside.
    assert (outside.children, outside.window_start) == (1, date(2026, 3, 4))


async def test_the_estimate_event_is_sent_when_it_changes_and_worked_out_once_a_day(uow: FakeUnitOfWork) -> None:
    policy = WaitPolicy(26, 20)
    assert await refresh_estimates(uow, today=date(2026, 3, 1), policy=policy, source="/w") == 1
    assert await refresh_estimates(uow, today=date(2026, 3, 1), policy=policy, source="/w") == 0  # done today
    assert await refresh_estimates(uow, today=date(2026, 3, 2), policy=policy, source="/w") == 0  # no change
    (sent, source), = uow.waits.sent  # fmt: skip
    assert (sent.service_id, sent.as_of, sent.to_support.median_days) == ("svc-camhs", date(2026, 3, 1), 22)
    assert source == "/w"
    assert uow.waits.computed == {"svc-camhs": date(2026, 3, 2)}
    # By 10 March r23 (submitted 5 March) counts too, and r24 has started: a new estimate.
    assert await refresh_estimates(uow, today=date(2026, 3, 10), policy=policy, source="/w") == 1


class Caller:
    principal = Principal("duty@camhs", "org-camhs", Role.RECEIVER)


@pytest.fixture
async def http(uow: FakeUnitOfWork) -> AsyncIterator[tuple[httpx.AsyncClient, Caller]]:
    app = FastAPI()
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    caller = Caller()

    async def is_known(organisation_id: str) -> bool:
        return organisation_id in ("org-camhs", "org-other")

    async def policy() -> WaitPolicy:
        return WaitPolicy(26, 20)

    app.dependency_overrides[unit_of_work] = lambda: uow
    app.dependency_overrides[current_principal] = lambda: caller.principal
    app.dependency_overrides[organisation_lookup] = lambda: is_known
    app.dependency_overrides[wait_policy] = policy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, caller


async def test_the_api_gives_the_estimate_for_any_as_of(http: tuple[httpx.AsyncClient, Caller]) -> None:
    client, _ = http
    r = await client.get("/v1/services/svc-camhs/predicted-wait", params={"as_of": "2026-03-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["children"] == 22 and body["enough_data"] is True and body["window_weeks"] == 26
    assert body["window_start"] == "2025-09-01"  # 26 weeks ending on 1 March 2026
    assert (body["to_support"]["median_days"], body["to_support"]["p90_days"]) == (22, 40)
    assert body["to_clock_stop"]["median_days"] == 22 and body["clock"] == "cypmh_4w"
    listed = await client.get("/v1/predicted-waits", params={"as_of": "2026-03-01"})
    assert listed.status_code == 200 and [e["service_id"] for e in listed.json()] == ["svc-camhs"]


async def test_the_api_refuses_unknown_services_bad_dates_and_withholds_small_counts(
    http: tuple[httpx.AsyncClient, Caller], uow: FakeUnitOfWork
) -> None:
    client, caller = http
    r = await client.get("/v1/services/svc-nowhere/predicted-wait")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/services/svc-camhs/predicted-wait", params={"as_of": "2026-13-01"})
    assert r.status_code == 422
    future = (date.today() + timedelta(days=30)).isoformat()
    r = await client.get("/v1/services/svc-camhs/predicted-wait", params={"as_of": future})
    assert r.status_code == 422
    # Three referrals at another service of the same organisation: its own organisation sees 3, others nothing.
    await project(uow, service(1, ["rtt_18w"], service_id="svc-slt"),
                  *(change(f"s{i}", 1, "submitted", day(0), child=f"d{i}", service="svc-slt") for i in range(3)))  # fmt: skip
    await refresh_marked_facts(uow)
    r = await client.get("/v1/services/svc-slt/predicted-wait", params={"as_of": "2026-03-01"})
    assert (r.json()["children"], r.json()["enough_data"]) == (3, False)
    caller.principal = Principal("someone@other", "org-other", Role.REFERRER)
    r = await client.get("/v1/services/svc-slt/predicted-wait", params={"as_of": "2026-03-01"})
    assert r.status_code == 200 and r.json()["children"] is None
    assert r.json()["to_support"]["median_days"] is None
