"""CSV exports in the shape of the official statistics.

- EHC 20-week timeliness, one row per EHC assessment service and calendar year, with the
  DfE's "all" and "excluding exceptions" percentages (`pc_plans_issued_within_20_weeks`,
  `pc_plans_issued_within_20_weeks_ex`).
- RTT-style waiting-time distribution on a date: referrals waiting by completed week, 0-1
  to 51-52 and 52+, with the share under 18 weeks (the national standard is 92%).

Disclosure control is the API's (``waitlists.domain.disclosure``), cell for cell: a withheld figure is written
``c`` as in DfE publications (a count of 1 to 4, a count that would let one be worked out again, or a percentage
over a withheld count); ``z`` means not applicable (nothing to divide by). The caller's own services are in full.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.clocks import ClockKind
from waitlists.domain.disclosure import RTT_WEEKS, WITHHELD_CSV, Controlled, Level, node_id
from waitlists.domain.metrics import ClockFigures, Period
from waitlists.domain.scope import Scope
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import area_controls
from waitlists.service_layer.unit_of_work import UnitOfWork

EHC_COLUMNS = (
    "time_period", "area_id", "service_id", "plans_issued", "plans_issued_within_20_weeks",
    "pc_plans_issued_within_20_weeks", "plans_issued_ex", "plans_issued_within_20_weeks_ex",
    "pc_plans_issued_within_20_weeks_ex",
)  # fmt: skip


def _cell(controlled: Controlled, node: str, name: str, value: object) -> str:
    """A figure as the official statistics write it: ``c`` withheld, ``z`` not applicable."""
    if controlled.withheld(node, name):
        return WITHHELD_CSV
    if value is None:
        return "z"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Sheet:
    """An export's header and rows, every cell written as the official statistics write it."""

    header: tuple[str, ...]
    rows: list[list[str]]


async def ehc_timeliness(area_id: str, year: int, today: date, uow: UnitOfWork, *, viewer: str | None = None) -> Sheet:
    period = Period(date(year, 1, 1), min(date(year, 12, 31), today))
    rows = []
    async with uow:
        in_scope = await uow.directory.scope_services(Scope.AREA, area_id)
        runs_plan_clock = {s: c for s, c in in_scope.items() if ClockKind.EHC_PLAN_20W in c.clocks}
        controlled, per_service = await area_controls(uow, Scope.AREA, area_id, period.end, period)
    controlled = controlled.for_viewer(viewer)
    kind = ClockKind.EHC_PLAN_20W.value
    for service_id in runs_plan_clock:
        f = per_service[service_id].clocks.get(kind) or ClockFigures()
        node = node_id(Level.SERVICE, service_id)

        def cell(name: str, value: object, node: str = node) -> str:
            return _cell(controlled, node, f"clock.{kind}.{name}", value)

        rows.append([str(year), area_id, service_id, cell("stopped", f.stopped), cell("met", f.met),
                     cell("pct", percent(f.met, f.stopped)), cell("stopped_ex", f.stopped_ex),
                     cell("met_ex", f.met_ex), cell("pct_ex", percent(f.met_ex, f.stopped_ex))])  # fmt: skip
    return Sheet(EHC_COLUMNS, rows)


async def rtt_distribution(
    scope: Scope, scope_id: str, day: date, uow: UnitOfWork, *, viewer: str | None = None
) -> Sheet:
    header = ["as_of", "service_id", "total_waiting", "within_18_weeks", "pc_within_18_weeks"]
    header += [f"weeks_{w}_{w + 1}" for w in range(RTT_WEEKS)] + [f"weeks_{RTT_WEEKS}_plus"]
    rows = []
    async with uow:
        in_scope = await uow.directory.scope_services(scope, scope_id)
        # The figures' own default period, so that the pattern of withheld cells is the API's.
        controlled, per_service = await area_controls(uow, scope, scope_id, day, Period(day - timedelta(days=364), day))
    controlled = controlled.for_viewer(viewer)
    for service_id in in_scope:
        tally = per_service[service_id]
        node = node_id(Level.SERVICE, service_id)
        weeks: Counter[int] = Counter()
        for waited, n in tally.waiting_days.items():
            weeks[waited // 7] += n
        total = sum(weeks.values())
        within = sum(n for w, n in weeks.items() if w < 18)
        bands = [_cell(controlled, node, f"rtt.{w}", weeks.get(w, 0)) for w in range(RTT_WEEKS)]
        bands.append(_cell(controlled, node, "dist.52+", sum(n for w, n in weeks.items() if w >= RTT_WEEKS)))
        rows.append([day.isoformat(), service_id, _cell(controlled, node, "waiting", total), _cell(controlled, node, "rtt.within18", within), _cell(controlled, node, "rtt.pct_within18", percent(within, total)), *bands])  # fmt: skip
    return Sheet(tuple(header), rows)
