"""Projecting events as they arrive, and keeping the facts in step with the timelines.

The facts of the children and services an event touched are derived again once per transaction, just before
it commits (``refresh_marked_facts``), so a batch of events for one child costs one refresh and the facts never
disagree with the timelines they come from. In the same step each of those referrals' clocks, as of its newest
change, are told to other services (``uk.send.waitlist.clocks_updated.v1``, through the outbox) when they
differ from those told last: one read and, if any changed, one write per transaction. The projection does not depend on arrival order; a referral version
that arrives while an earlier one is missing (the broker lost it and it is being published again) is counted
and logged."""

from __future__ import annotations

import logging

from send_shared.metrics import CONSUMER_VERSION_GAPS
from waitlists.domain.clock_updates import changed_clocks
from waitlists.domain.directory import OrganisationEntry, ServiceEntry, clocks_changed, newest
from waitlists.domain.facts import derive_journeys
from waitlists.domain.projection import ReferralEvent, project
from waitlists.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
CONSUMER_GROUP = "waitlists"
EVENT_SOURCE = "/send/waitlists"


async def project_event(uow: UnitOfWork, event: ReferralEvent | ServiceEntry | OrganisationEntry) -> None:
    async with uow:
        if isinstance(event, ReferralEvent):
            await _project_referral(uow, event)
        elif isinstance(event, ServiceEntry):
            held = await uow.directory.service(event.service_id)
            if newest(held, event) is event:
                await uow.directory.save_service(event)
            if clocks_changed(held, event):
                uow.mark_service(event.service_id)
        else:
            held_org = await uow.directory.organisation(event.organisation_id)
            if newest(held_org, event) is event:
                await uow.directory.save_organisation(event)
        await uow.commit()


async def _project_referral(uow: UnitOfWork, event: ReferralEvent) -> None:
    held = await uow.referrals.get(event.referral_id)
    latest = held.latest.version if held else 0
    if event.change.version > latest + 1:
        CONSUMER_VERSION_GAPS.labels(CONSUMER_GROUP).inc()
        log.warning(
            "referral version arrived before an earlier one",
            extra={"referral_id": event.referral_id, "version": event.change.version, "held": latest},
        )
    projected = project(held, event)
    if projected is not held:
        await uow.referrals.save(projected)
    uow.mark_child(event.child_ref)


async def refresh_marked_facts(uow: UnitOfWork, *, source: str = EVENT_SOURCE) -> None:
    """Derives again every fact of the children marked, and of every child with a referral at a service marked,
    and tells the clocks of their referrals that changed (events from ``source``)."""
    async with uow:
        children, services = uow.take_marked()
        if services:
            children |= await uow.referrals.children_at(services)
        if children:
            journeys = await uow.referrals.journeys(sorted(children))
            clocks = await uow.directory.service_clocks({t.service_id for j in journeys.values() for t in j})
            referral_ids = [t.referral_id for j in journeys.values() for t in j]
            await uow.facts.replace(referral_ids, derive_journeys(journeys, clocks))
            told_before = await uow.clock_updates.told_before(referral_ids)
            timelines = [t for j in journeys.values() for t in j]
            await uow.clock_updates.tell(changed_clocks(timelines, clocks, told_before), source)
        await uow.commit()


async def derive_everything(uows: UnitOfWorkFactory, chunk: int = 5000) -> int:
    """Derives the facts of every referral into empty fact tables, ``chunk`` children per transaction read as one
    range. Returns how many referrals have facts."""
    derived = 0
    after: str | None = None
    async with uows() as uow:
        clocks = await uow.directory.service_clocks()
    while True:
        async with uows() as uow:
            journeys, after = await uow.referrals.journeys_after(after, chunk)
            if after is None:
                return derived
            found = derive_journeys(journeys, clocks)
            await uow.facts.add(found)
            await uow.commit()
        derived += len(found)


async def backfill_facts(uows: UnitOfWorkFactory) -> None:
    """At start-up: a projection kept from before the fact tables existed gets its facts once."""
    async with uows() as uow:
        missing = await uow.referrals.any() and not await uow.facts.any()
    if missing:
        log.info("deriving facts for an existing projection", extra={"referrals": await derive_everything(uows)})
