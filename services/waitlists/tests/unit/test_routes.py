"""The HTTP layer over the in-memory unit of work, its dependencies swapped with ``dependency_overrides``: the
routes parse, call a use case and map its result."""

from __future__ import annotations

import csv
import io

import httpx

from send_shared.auth import Role
from waitlists.service_layer.projection import refresh_marked_facts

from .conftest import Caller
from .fake_unit_of_work import FakeUnitOfWork
from .test_services import change, project


async def test_a_referrals_clocks_for_its_receiver_and_a_404_for_anyone_else(
    http: httpx.AsyncClient, caller: Caller
) -> None:
    found = await http.get("/v1/referrals/r1/clocks", params={"as_of": "2026-01-10"})
    assert found.status_code == 200, found.text
    assert [(c["clock"], c["state"], c["waiting_days"], c["breach_date"]) for c in found.json()] == [
        ("cypmh_4w", "running", 5, "2026-02-03")
    ]
    caller.act_as("org-other")
    assert (await http.get("/v1/referrals/r1/clocks", params={"as_of": "2026-01-10"})).status_code == 404


async def test_figures_of_another_organisation_are_under_disclosure_control(
    http: httpx.AsyncClient, caller: Caller
) -> None:
    own = (await http.get("/v1/metrics/service/svc-camhs", params={"as_of": "2026-01-10"})).json()
    assert (own["suppressed"], own["waiting"]["waiting"], own["withheld"]) == (False, 1, [])
    caller.act_as("org-school", Role.REFERRER)
    other = (await http.get("/v1/metrics/service/svc-camhs", params={"as_of": "2026-01-10"})).json()
    assert (other["suppressed"], other["waiting"]["waiting"]) == (True, None)
    assert "waiting.waiting" in other["withheld"]
    unknown = await http.get("/v1/metrics/area/la-nowhere", params={"as_of": "2026-01-10"})
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no area 'la-nowhere' is known")


async def test_the_rtt_export_is_a_csv_of_the_figures(http: httpx.AsyncClient) -> None:
    found = await http.get("/v1/exports/rtt-distribution.csv",
                           params={"scope": "service", "scope_id": "svc-camhs", "as_of": "2026-01-10"})  # fmt: skip
    assert found.status_code == 200, found.text
    assert found.headers["content-type"] == "text/csv; charset=utf-8"
    (row,) = list(csv.DictReader(io.StringIO(found.text)))
    assert (row["as_of"], row["service_id"], row["total_waiting"], row["weeks_0_1"]) == (
        "2026-01-10", "svc-camhs", "1", "1",
    )  # fmt: skip


async def test_the_dashboard_is_for_operations_only(http: httpx.AsyncClient, caller: Caller) -> None:
    assert (await http.get("/v1/dashboard/scopes")).status_code == 403
    caller.act_as("org-camhs", Role.OPS)
    found = (await http.get("/v1/dashboard/scopes")).json()
    assert (found["areas"], found["services"]) == (["la-1"], [{"id": "svc-camhs", "name": "v1", "parent": "org-camhs"}])


async def test_the_trend_counts_clocks_stopped_in_each_month(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    await project(uow, change("r1", 2, "in_progress", "2026-01-20"))
    await refresh_marked_facts(uow)
    caller.act_as("org-camhs", Role.OPS)
    found = await http.get("/v1/dashboard/trend",
                           params={"scope": "service", "scope_id": "svc-camhs", "as_of": "2026-02-10", "months": 2})  # fmt: skip
    assert found.status_code == 200, found.text
    assert [(p["month_start"], p["clock"], p["stopped"], p["pct_within_target"]) for p in found.json()] == [
        ("2026-01-01", "cypmh_4w", 1, 100.0),
        ("2026-02-01", "cypmh_4w", 0, None),
    ]
