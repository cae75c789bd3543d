"""Every service's figures for today, for the /metrics gauges, with the disclosure control of the API's area
figures for today: a gauge whose value is withheld there is not published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.disclosure import Controlled, Table, area_table
from waitlists.domain.metrics import Period, Tally
from waitlists.domain.scope import Scope
from waitlists.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ServiceGauges:
    tallies: dict[str, Tally]
    controlled: Controlled  # over every area, for no viewer in particular: published figures


async def service_gauges(uow: UnitOfWork, today: date) -> ServiceGauges:
    period = Period(today - timedelta(days=364), today)
    async with uow:
        tallies = await uow.facts.tallies(await uow.directory.service_clocks(), today, period)
        table = Table()
        for area_id in await uow.directory.areas():
            _, organisation_of = await uow.directory.area_services(Scope.AREA, area_id)
            mine = {s: tallies[s] for s in organisation_of if s in tallies}
            part = area_table(area_id, mine, organisation_of, Tally(today, period))
            table.nodes |= part.nodes
            table.cells |= part.cells
    return ServiceGauges(tallies, Controlled.of(table))
