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

from prometheus_client.core import REGISTRY, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from waitlists.domain.disclosure import Controlled, Level, node_id
from waitlists.domain.metrics import Tally, waiting_figures
from waitlists.domain.timeline import london_today
from waitlists.service_layer.gauges import service_gauges
from waitlists.service_layer.unit_of_work import UnitOfWorkFactory

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


async def refresh(uows: UnitOfWorkFactory) -> None:
    found = await service_gauges(uows(), london_today())
    COLLECTOR.controlled = found.controlled
    COLLECTOR.tallies = found.tallies


async def run_refresher(uows: UnitOfWorkFactory, stop: asyncio.Event, *, interval: float) -> None:
    while not stop.is_set():
        await refresh(uows)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
