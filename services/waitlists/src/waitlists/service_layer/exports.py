"""CSV exports in the shape of the official statistics.

- EHC 20-week timeliness, one row per EHC assessment service and calendar year, with the
  DfE's "all" and "excluding exceptions" percentages (`pc_plans_issued_within_20_weeks`,
  `pc_plans_issued_within_20_weeks_ex`).
- RTT-style waiting-time distribution on a date: referrals waiting by completed week, 0-1
  to 51-52 and 52+, with the share under 18 weeks (the national standard is 92%).

Suppression follows DfE conventions: counts from 1 to 4 are written ``c`` (and so is a
percentage whose denominator is 1 to 4); ``z`` means not applicable (nothing to divide by).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.timelines import Scope
from waitlists.domain.clocks import ClockKind
from waitlists.domain.metrics import Period
from waitlists.domain.stats import SMALL_NUMBER, percent

EHC_COLUMNS = (
    "time_period", "area_id", "service_id", "plans_issued", "plans_issued_within_20_weeks",
    "pc_plans_issued_within_20_weeks", "plans_issued_ex", "plans_issued_within_20_weeks_ex",
    "pc_plans_issued_within_20_weeks_ex",
)  # fmt: skip
RTT_WEEKS = 52


def _count(n: int) -> str:
    return "c" if 0 < n < SMALL_NUMBER else str(n)


def _pct(numerator: int, denominator: int) -> str:
    if 0 < denominator < SMALL_NUMBER:
        return "c"
    value = percent(numerator, denominator)
    return "z" if value is None else f"{value:.1f}"


def _csv(header: Sequence[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


async def ehc_timeliness(area_id: str, year: int, today: date, sessions: async_sessionmaker[AsyncSession]) -> str:
    period = Period(date(year, 1, 1), min(date(year, 12, 31), today))
    rows = []
    async with sessions() as session:
        in_scope = await store.scope_services(session, Scope.AREA, area_id)
        runs_plan_clock = {s: c for s, c in in_scope.items() if ClockKind.EHC_PLAN_20W in c.clocks}
        per_service = await facts.tallies(session, runs_plan_clock, period.end, period)
    for service_id, tally in per_service.items():
        f = tally.clocks.get(ClockKind.EHC_PLAN_20W.value)
        stopped, met, stopped_ex, met_ex = (f.stopped, f.met, f.stopped_ex, f.met_ex) if f else (0, 0, 0, 0)
        rows.append([str(year), area_id, service_id, _count(stopped), _count(met), _pct(met, stopped),
                     _count(stopped_ex), _count(met_ex), _pct(met_ex, stopped_ex)])  # fmt: skip
    return _csv(EHC_COLUMNS, rows)


async def rtt_distribution(scope: Scope, scope_id: str, day: date, sessions: async_sessionmaker[AsyncSession]) -> str:
    header = ["as_of", "service_id", "total_waiting", "within_18_weeks", "pc_within_18_weeks"]
    header += [f"weeks_{w}_{w + 1}" for w in range(RTT_WEEKS)] + [f"weeks_{RTT_WEEKS}_plus"]
    rows = []
    async with sessions() as session:
        in_scope = await store.scope_services(session, scope, scope_id)
        per_service = await facts.tallies(session, in_scope, day, Period(day, day))
    for service_id, tally in per_service.items():
        weeks: Counter[int] = Counter()
        for waited, n in tally.waiting_days.items():
            weeks[waited // 7] += n
        total = sum(weeks.values())
        within = sum(n for w, n in weeks.items() if w < 18)
        bands = [weeks.get(w, 0) for w in range(RTT_WEEKS)] + [sum(n for w, n in weeks.items() if w >= RTT_WEEKS)]
        rows.append([day.isoformat(), service_id, _count(total), _count(within), _pct(within, total)]
                    + [_count(n) for n in bands])  # fmt: skip
    return _csv(header, rows)
