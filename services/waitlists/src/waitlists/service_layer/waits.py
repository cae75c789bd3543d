"""Predicted waits: a service's estimate on a date, every service's at once, and the daily estimate event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import date

from waitlists.domain.timeline import london_today
from waitlists.domain.waits import WaitEstimate, WaitPolicy, estimate, window_start
from waitlists.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class UnknownService(Exception):
    """No service of that id is known (yet) from the directory events."""


async def estimates_in(
    uow: UnitOfWork, service_ids: Collection[str] | None, as_of: date, policy: WaitPolicy
) -> dict[str, WaitEstimate]:
    """The estimate of each of these services (all known, for None) on ``as_of``, inside ``uow``: one read of the
    referrals' outcomes for all of them."""
    clocks = await uow.directory.service_clocks(service_ids)
    first_clocks = {sid: (c.clocks[0].value if c.clocks else None) for sid, c in clocks.items()}
    outcomes = await uow.waits.outcomes(first_clocks, window_start(as_of, policy.window_weeks), as_of)
    return {
        sid: estimate(sid, outcomes.get(sid, []), as_of, clock=clock, window_weeks=policy.window_weeks,
                      min_children=policy.min_children)
        for sid, clock in sorted(first_clocks.items())
    }  # fmt: skip


async def service_estimate(
    service_id: str, as_of: date, uow: UnitOfWork, policy: WaitPolicy
) -> tuple[WaitEstimate, str]:
    """The service's estimate on ``as_of`` and the organisation that runs it; ``UnknownService`` if none."""
    async with uow:
        entry = await uow.directory.service(service_id)
        if entry is None:
            raise UnknownService(service_id)
        found = await estimates_in(uow, [service_id], as_of, policy)
    return found[service_id], entry.organisation_id


async def all_estimates(as_of: date, uow: UnitOfWork, policy: WaitPolicy) -> tuple[list[WaitEstimate], dict[str, str]]:
    """Every known service's estimate on ``as_of``, and the organisation of each service."""
    async with uow:
        services = await uow.directory.services()
        found = await estimates_in(uow, list(services), as_of, policy)
    return [found[sid] for sid in sorted(found)], {sid: s.organisation_id for sid, s in services.items()}


async def refresh_estimates(uow: UnitOfWork, *, today: date, policy: WaitPolicy, source: str) -> int:
    """Works out today's estimate of every service not yet worked out today, and sends those that changed (a
    fall below the threshold is sent too, so that an estimate no longer supported is withdrawn, and a new service is told it has none yet). Returns how many were sent."""
    sent = 0
    async with uow:
        services = await uow.directory.service_clocks()
        done = await uow.waits.computed_on(list(services))
        due = [sid for sid in services if done.get(sid) != today]
        if not due:
            return 0
        for found in (await estimates_in(uow, due, today, policy)).values():
            sent += await uow.waits.send_if_changed(found, source)
        await uow.commit()
    if sent:
        log.info("wait estimates sent", extra={"estimates": sent, "as_of": today.isoformat()})
    return sent


async def run_estimate_scheduler(
    uows: UnitOfWorkFactory, stop: asyncio.Event, *, interval: float, policy: WaitPolicy, source: str
) -> None:
    """At start-up and then every ``interval`` seconds: today's estimates of the services not yet worked out
    today (so each at most once a day)."""
    while not stop.is_set():
        await refresh_estimates(uows(), today=london_today(), policy=policy, source=source)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
