"""Waiting-list gauges on /metrics, from a snapshot refreshed in the background.

Labels are the service and the clock kind only (no referral or child ever appears), and
the figures are computed off the request path so a scrape never waits on a database scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client.core import REGISTRY, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import organisations
from waitlists.adapters.timelines import Scope
from waitlists.domain.disclosure import Controlled, Level, Table, area_table, node_id
from waitlists.domain.metrics import Period, Tally, waiting_figures
from waitlists.service_layer import reporting
from waitlists.service_layer.alerting import london_today

log = logging.getLogger(__name__)
_WEEK_BUCKETS = (("4", "0-4"), ("18", "4-18"), ("52", "18-52"), ("+Inf", "52+"))


@dataclass(eq=False)
class WaitlistCollector(Collector):
    tallies: dict[str, Tally] = field(default_factory=dict)
    controlled: Controlled | None = None  # disclosure control over every area (no viewer: published figures)

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("waitlist_waiting_referrals", "Referrals waiting today.", labels=["service"])
        weeks = GaugeHistogramMetricFamily(
            "waitlist_waiting_weeks",
            "Weeks waited by referrals waiting today (buckets by completed weeks).",
            labels=["service"],
        )
        breached = GaugeMetricFamily(
            "waitlist_clock_breached_waiting",
            "Clocks past their target and still waiting.",
            labels=["service", "clock"],
        )
        imminent = GaugeMetricFamily(
            "waitlist_clock_imminent_breaches", "Running clocks breaching within 7 days.", labels=["service", "clock"]
        )
        within = GaugeMetricFamily(
            "waitlist_clock_within_target_ratio",
            "Share of clocks stopped in the last 365 days that met their target.",
            labels=["service", "clock"],
        )
        for service_id, tally in sorted(self.tallies.items()):
            node = node_id(Level.SERVICE, service_id)

            def hidden(*names: str, node: str = node) -> bool:
                return self.controlled is None or any(self.controlled.withheld(node, n) for n in names)

            w = waiting_figures(tally.waiting_days)
            if not hidden("waiting"):
                waiting.add_metric([service_id], w.waiting)
            # Cumulative buckets give each band back by subtraction: the histogram is all or nothing.
            if not hidden("waiting", "waiting.total_days", *(f"dist.{name}" for _, name in _WEEK_BUCKETS)):
                running = 0
                buckets = []
                for le, name in _WEEK_BUCKETS:
                    running += w.distribution[name]
                    buckets.append((le, float(running)))
                weeks.add_metric([service_id], buckets, gsum_value=w.total_days / 7)
            for clock, c in tally.clocks.items():
                if not hidden(f"clock.{clock}.breached"):
                    breached.add_metric([service_id, clock], c.breached_waiting)
                if not hidden(f"clock.{clock}.imminent"):
                    imminent.add_metric([service_id, clock], c.imminent)
                if c.pct_within_target is not None and not hidden(f"clock.{clock}.pct"):
                    within.add_metric([service_id, clock], c.pct_within_target / 100)
        yield from (waiting, weeks, breached, imminent, within)


COLLECTOR = WaitlistCollector()
with contextlib.suppress(ValueError):  # registered once per process
    REGISTRY.register(COLLECTOR)


async def refresh(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every service's figures, with the disclosure control of the API's area figures for today: a gauge
    whose value is withheld there is not published here."""
    today = london_today()
    period = Period(today - timedelta(days=364), today)
    async with sessions() as session:
        in_scope = await store.all_service_clocks(session)
        tallies = await facts.tallies(session, in_scope, today, period)
        areas = {r.area_id for r in await session.execute(select(organisations.c.area_id).distinct())}
        table = Table()
        for area_id in sorted(areas):
            _, organisation_of = await reporting.organisations_of(session, Scope.AREA, area_id)
            mine = {s: tallies[s] for s in organisation_of if s in tallies}
            part = area_table(area_id, mine, organisation_of, Tally(today, period))
            table.nodes |= part.nodes
            table.cells |= part.cells
    COLLECTOR.controlled = Controlled.of(table)
    COLLECTOR.tallies = tallies


async def run_refresher(sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event, *, interval: float) -> None:
    while not stop.is_set():
        await refresh(sessions)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
