"""The projection on a real database: arrival order, redelivery, directory versions, figures and alerts."""

from __future__ import annotations

from datetime import date
from functools import partial

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from waitlists.adapters.orm import alerts_sent, outbox, referrals, services
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.service_layer.alerting import raise_due_alerts

from .conftest import as_org, directory_events, feed, ops, referral_events


async def scalar(engine: AsyncEngine, query: object) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()  # type: ignore[arg-type]


async def test_events_fold_by_version_whatever_the_order_and_repeats(engine: AsyncEngine) -> None:
    submitted, accepted = referral_events(
        "r1", "c1", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-09")
    )
    await feed(engine, accepted, submitted, accepted, submitted)
    assert await scalar(engine, select(referrals.c.latest_status)) == "accepted"
    assert await scalar(engine, select(func.count()).select_from(referrals)) == 1


async def test_an_older_directory_snapshot_never_replaces_a_newer_one(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events(version=2), *directory_events(version=1))
    assert await scalar(engine, select(func.min(services.c.version))) == 2


async def test_figures_through_the_api(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    await feed(engine, *directory_events())
    await feed(engine, *referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-12"),
                                        ("in_progress", "2026-01-30")))  # fmt: skip
    await feed(engine, *referral_events("r2", "c2", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-20"),
                                        ("in_progress", "2026-02-20")))  # fmt: skip
    await feed(engine, *referral_events("r3", "c3", "svc-camhs", ("submitted", "2026-02-01")))
    response = await api.get(
        "/v1/metrics/service/svc-camhs?as_of=2026-03-31&period_start=2026-01-01", headers=as_org("org-camhs")
    )
    assert response.status_code == 200, response.text
    body = response.json()  # its own organisation sees the service in full
    assert (body["suppressed"], body["withheld"]) == (False, [])
    assert body["waiting"]["waiting"] == 1
    assert body["waiting"]["median_days"] == 58
    camhs = body["clocks"]["cypmh_4w"]
    assert (camhs["stopped_in_period"], camhs["met_in_period"], camhs["pct_within_target"]) == (2, 1, 50.0)
    # Anyone else (the local authority's ops here) gets the controlled figures: 1 is withheld, its median with it.
    other = (
        await api.get("/v1/metrics/service/svc-camhs?as_of=2026-03-31&period_start=2026-01-01", headers=ops())
    ).json()
    assert other["suppressed"] is True
    assert other["waiting"]["waiting"] is None and other["waiting"]["median_days"] is None
    assert {"waiting.waiting", "waiting.median_days", "clocks.cypmh_4w.pct_within_target"} <= set(other["withheld"])
    area = (await api.get("/v1/metrics/area/la-test?as_of=2026-03-31&period_start=2026-01-01", headers=ops())).json()
    assert area["suppressed"] is True
    assert area["waiting"]["waiting"] is None  # 1 is withheld at area level
    assert area["waiting"]["median_days"] is None  # the median of one wait is that wait
    assert "waiting.median_days" in area["withheld"]
    # 2 stopped, 1 met: withheld, and so is the 50% that would give them back.
    camhs_area = area["clocks"]["cypmh_4w"]
    assert (camhs_area["stopped_in_period"], camhs_area["met_in_period"], camhs_area["pct_within_target"]) == (
        None,
        None,
        None,
    )
    past = (await api.get("/v1/metrics/service/svc-camhs?as_of=2026-01-20", headers=as_org("org-camhs"))).json()
    assert past["waiting"]["waiting"] == 2  # r1 and r2 both waiting on 20 Jan
    clocks = (await api.get("/v1/referrals/r3/clocks?as_of=2026-02-20", headers=as_org("org-camhs"))).json()
    assert clocks == [
        {"clock": "cypmh_4w", "target_days": 28, "start": "2026-02-01", "state": "running", "waiting_days": 19,
         "stopped_on": None, "breach_date": "2026-03-02", "exception": False, "imminent": False,
         "paused": False, "breached_on": None}
    ]  # fmt: skip
    # The referrer sees them too; anyone else, whatever the role, is told there is no such referral.
    assert (await api.get("/v1/referrals/r3/clocks", headers=as_org("org-school", "referrer"))).status_code == 200
    for stranger in (ops(), as_org("org-la", "admin"), as_org("org-la", "referrer")):
        refused = await api.get("/v1/referrals/r3/clocks", headers=stranger)
        assert (refused.status_code, refused.json()["detail"]) == (404, "no such referral")
    # An organisation missing from the directory is refused whatever it asks.
    unknown = await api.get("/v1/referrals/r3/clocks", headers=as_org("org-other-school", "referrer"))
    assert (unknown.status_code, unknown.json()["title"]) == (403, "Unknown organisation")


async def test_metrics_input_errors_are_problems(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    await feed(engine, *directory_events())
    assert (await api.get("/v1/metrics/service/svc-nope", headers=ops())).status_code == 404
    assert (await api.get("/v1/metrics/galaxy/x", headers=ops())).status_code == 422
    future = await api.get("/v1/metrics/service/svc-camhs?as_of=2999-01-01", headers=ops())
    assert future.status_code == 422
    assert future.headers["content-type"] == "application/problem+json"
    assert (await api.get("/v1/metrics/service/svc-camhs")).status_code == 401


async def test_each_alert_fires_once_through_the_outbox(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events())
    await feed(engine, *referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05")))
    sessions = session_factory(engine)
    # Breach date 3 Feb: imminent from 27 Jan, breached from 3 Feb.
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 1, 20), lead_days=7, source="/t") == 0
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 1, 27), lead_days=7, source="/t") == 1
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 1, 28), lead_days=7, source="/t") == 0
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 2, 3), lead_days=7, source="/t") == 1
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 2, 4), lead_days=7, source="/t") == 0
    assert await scalar(engine, select(func.count()).select_from(alerts_sent)) == 2
    async with engine.connect() as conn:
        types = [
            h["ce_type"]
            for h in (await conn.execute(select(outbox.store.c.headers).order_by(outbox.store.c.position))).scalars()
            if h["ce_type"] != "uk.send.waitlist.clocks_updated.v1"  # the clocks told as the events came
        ]
    assert types == ["uk.send.waitlist.clock_breach_imminent.v1", "uk.send.waitlist.clock_breached.v1"]


async def test_waiting_list_gauges_on_metrics(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    from waitlists.entrypoints.prometheus import refresh

    await feed(engine, *directory_events())
    await feed(engine, *referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05")))
    await refresh(partial(SqlUnitOfWork, session_factory(engine)))
    text = (await api.get("/metrics")).text
    # One referral waiting: withheld on /metrics as in the API, gauges and histogram alike.
    assert 'waitlist_waiting_referrals{service="svc-camhs"}' not in text
    assert 'waitlist_waiting_weeks_bucket{le="+Inf",service="svc-camhs"}' not in text
    assert 'waitlist_clock_breached_waiting{clock="cypmh_4w",service="svc-camhs"}' not in text
    assert 'waitlist_waiting_referrals{service="svc-slt"} 0.0' in text  # nothing waiting is no secret
    for i in range(2, 6):
        await feed(engine, *referral_events(f"r{i}", f"c{i}", "svc-camhs", ("submitted", "2026-01-05")))
    await refresh(partial(SqlUnitOfWork, session_factory(engine)))
    text = (await api.get("/metrics")).text
    assert 'waitlist_waiting_referrals{service="svc-camhs"} 5.0' in text
    assert 'waitlist_waiting_weeks_bucket{le="+Inf",service="svc-camhs"} 5.0' in text
    assert 'waitlist_clock_breached_waiting{clock="cypmh_4w",service="svc-camhs"} 5.0' in text


async def test_csv_exports_in_the_official_layouts(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    import csv
    import io

    await feed(engine, *directory_events())
    for i in range(6):  # six plans: issued after 135, 135, 135, 150, 150, 150 days; one is an exception case
        changes: list[tuple[str, ...]] = [("submitted", "2026-01-05"), ("accepted", "2026-02-10")]
        if i == 0:
            changes.append(("on_hold", "2026-03-01", "school_closed_4_weeks"))
        changes.append(("completed", "2026-05-20" if i < 3 else "2026-06-04", None, "plan_issued"))
        await feed(engine, *referral_events(f"e{i}", f"c{i}", "svc-ehc", *changes))
    response = await api.get("/v1/exports/ehc-timeliness.csv?area_id=la-test&year=2026", headers=as_org("org-camhs"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    # 6 - 5 would give back the 1 exception case: one of the two is withheld too.
    assert "c" in (row["plans_issued"], row["plans_issued_ex"])
    assert {row["plans_issued"], row["plans_issued_ex"]} <= {"6", "5", "c"}
    assert row["plans_issued_within_20_weeks"] == "c"  # 3 is withheld
    assert row["pc_plans_issued_within_20_weeks"] == "c"  # 50.0 of 6 would give the 3 back
    assert row["plans_issued_within_20_weeks_ex"] == "c"  # 2
    assert row["pc_plans_issued_within_20_weeks_ex"] == "c"
    # The service's own organisation (the local authority) sees it in full.
    (own,) = list(
        csv.DictReader(
            io.StringIO((await api.get("/v1/exports/ehc-timeliness.csv?area_id=la-test&year=2026", headers=ops())).text)
        )
    )
    assert own["plans_issued"] == "6"
    assert own["plans_issued_within_20_weeks"] == "3"
    assert own["pc_plans_issued_within_20_weeks"] == "50.0"
    assert own["plans_issued_ex"] == "5"
    assert own["pc_plans_issued_within_20_weeks_ex"] == "40.0"  # 2 of the 5 without exceptions
    await feed(engine, *referral_events("w1", "c9", "svc-camhs", ("submitted", "2026-01-05")))
    rtt = await api.get(
        "/v1/exports/rtt-distribution.csv?scope=service&scope_id=svc-camhs&as_of=2026-03-02", headers=ops()
    )
    (line,) = list(csv.DictReader(io.StringIO(rtt.text)))
    assert (line["total_waiting"], line["weeks_8_9"], line["pc_within_18_weeks"]) == (
        "c",
        "c",
        "c",
    )  # 56 days = 8 weeks


async def test_an_event_arriving_after_the_breach_alert_corrects_the_figures(engine: AsyncEngine) -> None:
    from waitlists.domain.scope import Scope
    from waitlists.service_layer.reporting import FigureRequest, figures_for

    await feed(engine, *directory_events())
    submitted, accepted, started = referral_events(
        "late",
        "c1",
        "svc-camhs",
        ("submitted", "2026-01-05"),
        ("accepted", "2026-01-10"),
        ("in_progress", "2026-02-01"),
    )
    await feed(engine, submitted, accepted)
    sessions = session_factory(engine)
    assert (
        await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 2, 5), lead_days=7, source="/t") == 1
    )  # breached on 3 Feb
    await feed(engine, started)  # recorded late: support had started on 1 Feb, inside the 28 days
    assert await raise_due_alerts(SqlUnitOfWork(sessions), today=date(2026, 2, 6), lead_days=7, source="/t") == 0
    f = await figures_for(
        FigureRequest(Scope.SERVICE, "svc-camhs", date(2026, 2, 6), date(2026, 1, 1)), SqlUnitOfWork(sessions)
    )
    clock = f.clocks["cypmh_4w"]
    assert (clock.stopped, clock.met, clock.breached_waiting) == (1, 1, 0)
    # The figures for 5 Feb are corrected too: business time, not recording time, decides.
    then = await figures_for(
        FigureRequest(Scope.SERVICE, "svc-camhs", date(2026, 2, 5), date(2026, 1, 1)), SqlUnitOfWork(sessions)
    )
    assert then.clocks["cypmh_4w"].met == 1


async def test_dashboard_filters_list_receiving_organisations_only(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    await feed(engine, *directory_events())
    response = await api.get("/v1/dashboard/scopes", headers=ops())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["areas"] == ["la-test"]
    # An area is shown by its local authority's name (the directory names no area), not its id.
    assert body["area_choices"] == [{"id": "la-test", "name": "org-la", "parent": ""}]
    assert [o["id"] for o in body["organisations"]] == ["org-camhs", "org-la"]  # not the school, which only refers
    assert {s["id"] for s in body["services"]} == {"svc-camhs", "svc-ehc", "svc-slt"}


async def test_dashboard_ranks_services_and_lists_every_clock_they_run(
    engine: AsyncEngine, api: httpx.AsyncClient
) -> None:
    await feed(engine, *directory_events())
    await feed(engine, *referral_events("r1", "c1", "svc-slt", ("submitted", "2026-01-05")))
    await feed(engine, *referral_events("r2", "c2", "svc-camhs", ("submitted", "2026-03-25")))
    await feed(engine, *referral_events("r3", "c3", "svc-slt", ("submitted", "2026-03-30")))
    response = await api.get(
        "/v1/dashboard/services?scope=area&scope_id=la-test&as_of=2026-03-31", headers=as_org("org-camhs", "ops")
    )
    assert response.status_code == 200, response.text
    rows = response.json()  # the CAMHS trust's own services, in full
    # SLT: r1 waiting 85 days against 56 (breached), r3 1 day; CAMHS: 6 days against 28, breaching on
    # 23 April, 23 days ahead (week 4). Equal breach counts; SLT has more waiting.
    assert [r["service_id"] for r in rows] == ["svc-slt", "svc-camhs", "svc-ehc"]
    assert (rows[0]["waiting"], rows[0]["breached_waiting"]) == (2, 1)
    assert (rows[0]["median_days"], rows[0]["p90_days"]) == (1, 85)  # nearest rank over waits of 1 and 85 days
    assert rows[1]["breaches_next_4_weeks"] == [0, 0, 0, 1]
    # The local authority's ops get the same ranking with the small counts withheld.
    controlled = (
        await api.get("/v1/dashboard/services?scope=area&scope_id=la-test&as_of=2026-03-31", headers=ops())
    ).json()
    assert [r["service_id"] for r in controlled] == ["svc-slt", "svc-camhs", "svc-ehc"]
    assert (controlled[0]["waiting"], controlled[0]["breached_waiting"]) == (None, None)
    assert controlled[0]["p90_days"] is None and "p90_days" in controlled[0]["withheld"]  # over a withheld base
    assert controlled[1]["breaches_next_4_weeks"][3] is None and "breaches_next_4_weeks.3" in controlled[1]["withheld"]
    trend = await api.get("/v1/dashboard/trend?scope=area&scope_id=la-test&as_of=2026-03-31&months=1", headers=ops())
    kinds = [p["clock"] for p in trend.json()]
    assert kinds == ["cypmh_4w", "ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w", "service_target"]
