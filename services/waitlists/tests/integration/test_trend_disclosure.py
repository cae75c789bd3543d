"""The dashboard trend under disclosure control, through the HTTP endpoint: a month's small count and its percentage
are null and listed in ``withheld``; the organisation running the service sees them."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import as_org, directory_events, feed, ops, referral_events


async def test_a_small_month_is_withheld_from_others_and_shown_to_its_own_organisation(
    engine: AsyncEngine, api: httpx.AsyncClient
) -> None:
    await feed(engine, *directory_events())
    for n in range(3):  # three CAMHS clocks stopped in March, within 28 days
        await feed(engine, *referral_events(f"r{n}", f"c{n}", "svc-camhs", ("submitted", "2026-03-02"),
                                            ("in_progress", "2026-03-10")))  # fmt: skip
    query = "/v1/dashboard/trend?scope={}&scope_id={}&as_of=2026-03-31&months=2"
    for scope, scope_id in (("area", "la-test"), ("organisation", "org-camhs"), ("service", "svc-camhs")):
        response = await api.get(query.format(scope, scope_id), headers=ops())
        assert response.status_code == 200, response.text
        march = next(p for p in response.json() if p["clock"] == "cypmh_4w" and p["month_start"] == "2026-03-01")
        assert (march["stopped"], march["pct_within_target"], march["pct_within_target_ex"]) == (None, None, None)
        assert set(march["withheld"]) == {"stopped", "pct_within_target", "pct_within_target_ex"}
        february = next(p for p in response.json() if p["clock"] == "cypmh_4w" and p["month_start"] == "2026-02-01")
        assert february["withheld"] == [] or february["stopped"] is None  # none, or withheld so the total keeps March
    own = await api.get(query.format("service", "svc-camhs"), headers=as_org("org-camhs", "ops"))
    assert own.status_code == 200, own.text
    march = next(p for p in own.json() if p["clock"] == "cypmh_4w" and p["month_start"] == "2026-03-01")
    assert (march["stopped"], march["pct_within_target"], march["withheld"]) == (3, 100.0, [])
    # Every month with nothing stopped stays visible (0, no percentage) for everyone.
    ehc = next(p for p in (await api.get(query.format("area", "la-test"), headers=ops())).json()
               if p["clock"] == "ehc_decision_6w" and p["month_start"] == "2026-03-01")  # fmt: skip
    assert (ehc["stopped"], ehc["pct_within_target"], ehc["withheld"]) == (0, None, [])
