"""Impact figures of a scope's services on a date, under the figures' disclosure control (issue #18): re-referral,
outcomes and time to support by the referrer's kind and by need code (``domain.impact``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.disclosure import Controlled, Level, Withheld, node_id
from waitlists.domain.impact import (
    WINDOWS,
    YEAR_DAYS,
    ServiceImpact,
    impact,
    impact_cells,
    impact_table,
    quantiles,
    service_kind,
)
from waitlists.domain.scope import Scope
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import UnknownScope
from waitlists.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Rereferral:
    completed: int | None
    rereferred: int | None
    pct: float | None


@dataclass(frozen=True)
class TimeToSupport:
    referrer_kind: str
    started: int | None
    median_days: int | None
    p90_days: int | None


@dataclass(frozen=True)
class NeedTimeToSupport:
    need_code: str
    started: int | None
    median_days: int | None
    p90_days: int | None


@dataclass(frozen=True)
class ImpactRow:
    scope: str
    scope_id: str
    name: str
    service_kind: str | None
    rereferral: dict[str, Rereferral]
    outcomes: dict[str, int | None]
    completed: int | None
    time_to_support: list[TimeToSupport]
    time_to_support_by_need: list[NeedTimeToSupport]
    withheld: list[str]


@dataclass(frozen=True)
class ImpactReport:
    scope: Scope
    scope_id: str
    as_of: date
    suppressed: bool
    total: ImpactRow
    services: list[ImpactRow]


async def impact_report(scope: Scope, scope_id: str, day: date, uow: UnitOfWork, *, viewer: str | None = None
                        ) -> ImpactReport:  # fmt: skip
    first = day - timedelta(days=max(WINDOWS.values()) + YEAR_DAYS)
    async with uow:
        in_scope = await uow.directory.scope_services(scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        area_id, organisation_of = await uow.directory.area_services(scope, scope_id)
        in_area = {**await uow.directory.scope_services(Scope.AREA, area_id), **in_scope}
        every = await uow.directory.service_clocks()
        names = {s.service_id: s.name for s in (await uow.directory.services(in_area)).values()}
        read = await uow.facts.impact(sorted(in_area), first, day)
    kinds = {s: service_kind(c) for s, c in {**every, **in_area}.items()}
    found = impact(read, kinds, in_area, day)
    codes = sorted({code for f in found.values() for code in f.outcomes})
    referrer_kinds = sorted({k for f in found.values() for k in f.waits})
    needs = sorted({code for f in found.values() for code in f.need_waits})
    for service_id in in_area:
        organisation_of.setdefault(service_id, scope_id if scope is Scope.ORGANISATION else f"unknown-{service_id}")
    table = impact_table(area_id, {s: impact_cells(f, codes, referrer_kinds, needs) for s, f in found.items()},
                         organisation_of)  # fmt: skip
    controlled = Controlled.of(table).for_viewer(viewer)
    node = node_id(scope, scope_id)

    def row(at: str, level: str, ident: str, name: str, parts: list[ServiceImpact], kind: str | None) -> ImpactRow:
        w = Withheld(controlled, at)
        rereferral = {}
        for window in WINDOWS:
            completed = sum(p.rereferral[window][0] for p in parts)
            again = sum(p.rereferral[window][1] for p in parts)
            rereferral[window] = Rereferral(
                w(f"rereferral.{window}.completed", f"reref.{window}.completed", completed),
                w(f"rereferral.{window}.rereferred", f"reref.{window}.again", again),
                w(f"rereferral.{window}.pct", f"reref.{window}.pct", percent(again, completed)),
            )
        outcomes = {code: w(f"outcomes.{code}", f"outcome.{code}", sum(p.outcomes.get(code, 0) for p in parts))
                    for code in codes}  # fmt: skip

        def support(path: str, cell: str, days: Counter[int]) -> tuple[int | None, int | None, int | None]:
            median, p90 = quantiles(days)
            return (w(f"{path}.started", cell, sum(days.values())), w(f"{path}.median_days", f"{cell}.median", median),
                    w(f"{path}.p90_days", f"{cell}.p90", p90))  # fmt: skip

        waits = [TimeToSupport(k, *support(f"time_to_support.{k}", f"started.{k}", _pooled((p.waits for p in parts), k)))
                 for k in referrer_kinds]  # fmt: skip
        by_need = [NeedTimeToSupport(code, *support(f"time_to_support_by_need.{code}", f"need.{code}",
                                                    _pooled((p.need_waits for p in parts), code)))
                   for code in needs]  # fmt: skip
        completed_all = sum(sum(p.outcomes.values()) for p in parts)
        return ImpactRow(level, ident, name, kind, rereferral, outcomes,
                         w("completed", "outcomes.completed", completed_all), waits, by_need, w.paths)  # fmt: skip

    services = [row(node_id(Level.SERVICE, s), "service", s, names.get(s, s), [found[s]], kinds[s])
                for s in sorted(in_scope)]  # fmt: skip
    total = row(node, scope.value, scope_id, scope_id, [found[s] for s in in_scope], None)
    return ImpactReport(scope, scope_id, day, not controlled.full(node), total, services)


def _pooled(waits: Iterable[Mapping[str, Counter[int]]], group: str) -> Counter[int]:
    """One group's days to support, added up over services."""
    days: Counter[int] = Counter()
    for of_service in waits:
        days.update(of_service.get(group, Counter()))
    return days
