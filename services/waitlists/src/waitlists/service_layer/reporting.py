"""Reporting use cases: figures for a scope on a date, and one referral's clocks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.clocks import Clock, ServiceClocks
from waitlists.domain.disclosure import Controlled, area_table, node_id
from waitlists.domain.metrics import Figures, Period, Tally, clocks_on, figures
from waitlists.domain.scope import Scope
from waitlists.service_layer.unit_of_work import UnitOfWork


class UnknownScope(Exception):
    """No service, organisation or area of that id is known (yet) from the directory events."""


@dataclass(frozen=True)
class FigureRequest:
    scope: Scope
    scope_id: str
    as_of: date
    period_start: date | None = None

    @property
    def period(self) -> Period:
        start = self.period_start or self.as_of - timedelta(days=364)
        return Period(start, self.as_of)


@dataclass(frozen=True)
class ControlledFigures:
    """A scope's figures, with disclosure control over its whole area (the same for every output), and the
    scope's node in it."""

    figures: Figures
    controlled: Controlled
    node: str


async def figures_for(request: FigureRequest, uow: UnitOfWork) -> Figures:
    return (await controlled_figures(request, uow)).figures


async def controlled_figures(request: FigureRequest, uow: UnitOfWork) -> ControlledFigures:
    async with uow:
        in_scope = await uow.directory.scope_services(request.scope, request.scope_id)
        if not in_scope:
            raise UnknownScope(request.scope_id)
        controlled, per_service = await area_controls(uow, request.scope, request.scope_id, request.as_of,
                                                      request.period)  # fmt: skip
        several = await uow.facts.children_on_several_lists(list(in_scope), request.as_of)
    total = Tally(request.as_of, request.period)
    for service_id in in_scope:
        total += per_service[service_id]
    return ControlledFigures(figures(total, several), controlled, node_id(request.scope, request.scope_id))


async def area_controls(
    uow: UnitOfWork, scope: Scope, scope_id: str, day: date, period: Period
) -> tuple[Controlled, dict[str, Tally]]:
    """Disclosure control over the area holding the scope, and every service's tally in it (inside ``uow``)."""
    area_id, organisation_of = await uow.directory.area_services(scope, scope_id)
    in_area = await uow.directory.scope_services(Scope.AREA, area_id)
    in_scope = await uow.directory.scope_services(scope, scope_id)  # a service whose organisation is unknown yet
    return await area_controls_over(uow, area_id, organisation_of, {**in_area, **in_scope}, day, period)


async def area_controls_over(
    uow: UnitOfWork,
    area_id: str,
    organisation_of: Mapping[str, str],
    services: Mapping[str, ServiceClocks],
    day: date,
    period: Period,
) -> tuple[Controlled, dict[str, Tally]]:
    """``area_controls`` for a caller that has read the area's services already (inside ``uow``)."""
    per_service = await uow.facts.tallies(services, day, period)
    owners = {s: organisation_of.get(s, f"unknown-{s}") for s in per_service}
    blank = Tally(day, period)
    return Controlled.of(area_table(area_id, per_service, owners, blank)), per_service


async def referral_clocks(referral_id: str, as_of: date, uow: UnitOfWork, *, viewer: str) -> list[Clock] | None:
    """The referral's clocks on ``as_of``; None when there is no such referral, or ``viewer`` (an
    organisation id) is neither its referrer nor its receiver."""
    async with uow:
        parties = (await uow.referrals.parties([referral_id])).get(referral_id)
        if parties is None or not parties.include(viewer):
            return None
        timeline = await uow.referrals.timeline(referral_id)
        if timeline is None or timeline.in_error:
            return None
        clocks = await uow.directory.service_clocks([timeline.service_id])
    service = clocks.get(timeline.service_id)
    return clocks_on(timeline, service, as_of) if service else []


async def organisation_known(organisation_id: str, uow: UnitOfWork) -> bool:
    """Whether the organisation is in the directory as waitlists has it from the directory's events."""
    async with uow:
        return await uow.directory.organisation_known(organisation_id)
