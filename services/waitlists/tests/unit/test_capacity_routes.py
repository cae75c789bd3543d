"""The capacity routes over the in-memory unit of work: weekly flows, the breach forecast and their CSVs, under
disclosure control (issue #18)."""

from __future__ import annotations

import csv
import io

import httpx

from send_shared.auth import Role
from waitlists.service_layer.projection import refresh_marked_facts

from .conftest import Caller
from .fake_unit_of_work import FakeUnitOfWork
from .test_services import change, project

AS_OF = {"as_of": "2026-01-10"}  # a Saturday: the last week runs from Sunday 4 January to it


async def test_weekly_flows_by_week_ending_on_as_of(http: httpx.AsyncClient, caller: Caller) -> None:
    found = await http.get("/v1/capacity/service/svc-camhs/weekly", params={**AS_OF, "weeks": 2})
    assert found.status_code == 200, found.text
    body = found.json()
    assert [(w["week_start"], w["week_end"], w["demand"], w["throughput"], w["net_change"])
            for w in body["weeks"]] == [("2025-12-28", "2026-01-03", 0, 0, 0),
                                        ("2026-01-04", "2026-01-10", 1, 0, 1)]  # fmt: skip
    caller.act_as("org-school", Role.REFERRER)
    other = (await http.get("/v1/capacity/service/svc-camhs/weekly", params={**AS_OF, "weeks": 2})).json()
    assert other["suppressed"] is True
    assert (other["weeks"][1]["demand"], other["weeks"][1]["net_change"]) == (None, None)
    assert {"demand", "net_change", "waiting_at_end"} <= set(other["weeks"][1]["withheld"])


async def test_the_forecast_worked_by_hand(http: httpx.AsyncClient, caller: Caller) -> None:
    # No starts in the 8 weeks: r1 is never started and breaches on 3 February (week 4 after 10 January). One
    # referral in 8 weeks: 0.125 a week, so one new referral arrives in week 8 (1 March), due 30 March: a breach
    # within 12 weeks (to 4 April). With one more start a week, r1 starts on 11 January and the new one the day
    # it arrives: none breach.
    found = await http.get("/v1/capacity/service/svc-camhs/forecast", params={**AS_OF, "extra_starts": 1})
    assert found.status_code == 200, found.text
    (row,) = found.json()["services"]
    assert (row["rank"], row["throughput_per_week"], row["demand_per_week"], row["target_days"]) == (1, 0, 0.125, 28)
    assert (row["breaches"], row["breaches_with_extra"], row["avoided"]) == (
        {"4": 1, "12": 2}, {"4": 0, "12": 0}, {"4": 1, "12": 2},
    )  # fmt: skip
    assert row["avoided_per_extra_start"] == 0.167
    caller.act_as("org-school", Role.REFERRER)
    other = (await http.get("/v1/capacity/service/svc-camhs/forecast", params=AS_OF)).json()
    assert other["services"][0]["breaches"] == {"4": None, "12": None}
    assert other["services"][0]["avoided_per_extra_start"] is None
    assert other["services"][0]["rank"] is None, "a place in the ranking would tell of the withheld figures"


async def test_the_csvs_write_withheld_cells_as_c(http: httpx.AsyncClient, caller: Caller) -> None:
    caller.act_as("org-school", Role.REFERRER)
    params = {"scope": "service", "scope_id": "svc-camhs", **AS_OF}
    found = await http.get("/v1/exports/breach-forecast.csv", params=params)
    assert found.status_code == 200, found.text
    (row,) = list(csv.DictReader(io.StringIO(found.text)))
    assert (row["rank"], row["service_id"], row["breaches_4w"], row["target_days"]) == ("c", "svc-camhs", "c", "28")
    weekly = list(csv.DictReader(io.StringIO((await http.get("/v1/exports/capacity-weekly.csv", params=params)).text)))
    assert (weekly[-1]["week_start"], weekly[-1]["demand"], weekly[0]["demand"]) == ("2026-01-04", "c", "0")


async def test_bad_input_is_a_problem_naming_the_field(http: httpx.AsyncClient) -> None:
    found = await http.get("/v1/capacity/service/svc-camhs/forecast", params={**AS_OF, "extra_starts": -1})
    assert found.status_code == 422
    assert found.headers["content-type"].startswith("application/problem+json")
    unknown = await http.get("/v1/capacity/area/la-nowhere/weekly", params=AS_OF)
    assert unknown.status_code == 404


async def test_impact_rereferral_and_time_to_support(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    # r1 (child c1, submitted 5 January) starts on 20 January (15 days) and completes on 1 February; the same child
    # is referred to the same service on 1 March, within 6 months. On 1 September the 6-month window has passed for
    # completions up to 3 March: r1 counts, re-referred. The 12-month one has not: none count.
    await project(uow, change("r1", 2, "in_progress", "2026-01-20"), change("r1", 3, "completed", "2026-02-01"),
                  change("r2", 1, "submitted", "2026-03-01"))  # fmt: skip
    await refresh_marked_facts(uow)
    found = await http.get("/v1/impact/service/svc-camhs", params={"as_of": "2026-09-01"})
    assert found.status_code == 200, found.text
    (row,) = found.json()["services"]
    assert row["rereferral"]["6m"] == {"completed": 1, "rereferred": 1, "pct": 100.0}
    assert row["rereferral"]["12m"] == {"completed": 0, "rereferred": 0, "pct": None}
    assert row["time_to_support"] == [{"referrer_kind": "unknown", "started": 1, "median_days": 15, "p90_days": 15}]
    assert row["time_to_support_by_need"] == [{"need_code": "unknown", "started": 1, "median_days": 15,
                                               "p90_days": 15}]  # fmt: skip
    sheet = await http.get("/v1/exports/impact.csv", params={"scope": "service", "scope_id": "svc-camhs",
                                                             "as_of": "2026-09-01"})  # fmt: skip
    assert "svc-camhs,rereferred,6m,1" in sheet.text
    assert "svc-camhs,median_days_to_support_by_need,unknown,15" in sheet.text


async def test_time_to_support_by_need_code_withheld_from_others(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    # Started on 20 January: r2 (SEMH and ASD) after 15 days, r3 (SEMH) after 10; six more SEMH after 5 days each.
    # SEMH: 8 referrals (5 x6, 10, 15: median rank 4 = 5, p90 rank ceil(7.2) = 8 = 15); ASD: 1, withheld.
    semh_asd = {"primary_need": "SEMH", "secondary_need": "ASD"}
    events = [change("r2", 1, "submitted", "2026-01-05", **semh_asd), change("r2", 2, "in_progress", "2026-01-20",
              **semh_asd), change("r3", 1, "submitted", "2026-01-10", primary_need="SEMH"),
              change("r3", 2, "in_progress", "2026-01-20", primary_need="SEMH")]  # fmt: skip
    for i in range(6):
        events += [change(f"s{i}", 1, "submitted", "2026-01-15", child=f"k{i}", primary_need="SEMH"),
                   change(f"s{i}", 2, "in_progress", "2026-01-20", child=f"k{i}", primary_need="SEMH")]  # fmt: skip
    await project(uow, *events)
    await refresh_marked_facts(uow)
    caller.act_as("org-school", Role.REFERRER)
    found = await http.get("/v1/impact/service/svc-camhs", params={"as_of": "2026-02-01"})
    assert found.status_code == 200, found.text
    (row,) = found.json()["services"]
    by_need = {n["need_code"]: n for n in row["time_to_support_by_need"]}
    assert by_need["ASD"] == {"need_code": "ASD", "started": None, "median_days": None, "p90_days": None}
    assert "time_to_support_by_need.ASD.started" in row["withheld"]
    # SEMH stays: started (8) less SEMH (8) is ASD less the referrals with two codes, and a reader knows neither.
    assert by_need["SEMH"] == {"need_code": "SEMH", "started": 8, "median_days": 5, "p90_days": 15}
    caller.act_as("org-camhs")
    own = (await http.get("/v1/impact/service/svc-camhs", params={"as_of": "2026-02-01"})).json()["services"][0]
    assert {n["need_code"]: (n["started"], n["median_days"], n["p90_days"]) for n in own["time_to_support_by_need"]} \
        == {"ASD": (1, 15, 15), "SEMH": (8, 5, 15)}  # fmt: skip
    sheet = await http.get("/v1/exports/impact.csv", params={"scope": "service", "scope_id": "svc-camhs",
                                                             "as_of": "2026-02-01"})  # fmt: skip
    assert "svc-camhs,started_with_need,ASD,1" in sheet.text
