"""Support while waiting (issue 18): interim offers in the directory, each service's predicted wait as waitlists
tells it, signposting a referral to fitting offers (accepted with a long predicted wait, or a clock nearing
breach) and recording when one is taken up. Signposts and take-ups are events (ids and codes only)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from referrals.adapters.event_mapping import signposted_event, taken_up_event
from referrals.domain.consent import age_on
from referrals.domain.interim import (
    InterimOffer,
    Signpost,
    SignpostNotFound,
    SignpostTrigger,
    TakenUpBy,
    WaitEstimate,
    check_offer,
    fitting_offers,
)
from referrals.domain.lifecycle import FINAL, Status
from referrals.domain.model import Referral
from referrals.service_layer.callers import Caller, FamilyCaller
from referrals.service_layer.directory import NotOwner
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.repositories import InterimRepository, ReferralRepository
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.events.envelope import CloudEvent

log = logging.getLogger(__name__)
LONDON = ZoneInfo("Europe/London")  # a child's age is counted on the day in England


async def upsert_offer(offer: InterimOffer, uow: UnitOfWork, *, owner: str | None = None) -> InterimOffer:
    """Registers or changes an interim offer of a service; with ``owner`` (an organisation's admin), only an offer
    of that organisation's own services (before and after the change)."""
    async with uow:
        service = await uow.directory.service(offer.service_id, include_inactive=True)
        provider = await uow.directory.organisation(offer.provider_org_id)
        check_offer(offer, service, provider)
        if owner is not None:
            if service is None or service.organisation_id != owner:
                raise NotOwner("an organisation's admin lists interim offers of its own organisation's services only")
            current = await uow.interim.offer(offer.id)
            if current is not None:
                was = await uow.directory.service(current.service_id, include_inactive=True)
                if was is None or was.organisation_id != owner:
                    raise NotOwner("an organisation's admin changes its own organisation's interim offers only")
        saved = await uow.interim.save_offer(offer)
        await uow.commit()
    return saved


async def seed_offers_if_empty(offers: Sequence[InterimOffer], uow: UnitOfWork) -> int:
    """Loads the seed interim offers into a directory that has none (after the seed services); returns how many."""
    async with uow:
        if await uow.interim.all_offers():
            return 0
        added = 0
        for offer in offers:  # only those whose service and provider are in the directory
            service = await uow.directory.service(offer.service_id, include_inactive=True)
            if service is not None and await uow.directory.organisation(offer.provider_org_id) is not None:
                await uow.interim.save_offer(offer)
                added += 1
        await uow.commit()
    return added


async def all_offers(uow: UnitOfWork) -> list[InterimOffer]:
    async with uow:
        return await uow.interim.all_offers()


async def estimates(uow: UnitOfWork, service_ids: Sequence[str] | None = None) -> dict[str, WaitEstimate]:
    async with uow:
        return await uow.interim.estimates(service_ids)


async def keep_estimate(estimate: WaitEstimate, interim: InterimRepository) -> bool:
    kept = await interim.keep_estimate(estimate)
    if not kept:
        log.info("older wait estimate ignored", extra={"service_id": estimate.service_id})
    return kept


async def signpost(
    referral: Referral,
    trigger: SignpostTrigger,
    interim: InterimRepository,
    referrals: ReferralRepository,
    *,
    now: datetime,
) -> list[Signpost]:
    """Signposts the referral to the fitting offers it was not yet signposted to (the service's own first), for the
    child's age in England today; returns the new signposts (none if nothing fits)."""
    if referral.status in FINAL:
        return []
    already = {s.offer_id for s in await interim.signposts_of(referral.id)}
    needs = [n for n in (referral.primary_need, referral.secondary_need) if n]
    person = await referrals.person(referral.id)  # None once erased: the age is not known, any range suits
    age = None if person is None else age_on(person.date_of_birth, now.astimezone(LONDON).date())
    chosen = fitting_offers(await interim.all_offers(), referral.service_id, needs, referral.urgency, already=already,
                            age=age)  # fmt: skip
    signposts = [Signpost(referral.id, o.id, o.provider_org_id, trigger, now, position=i) for i, o in enumerate(chosen)]
    if signposts:
        await interim.add_signposts(signposts)
    return signposts


async def signpost_if_long_wait(
    referral: Referral, uow: UnitOfWork, *, threshold_days: int, now: datetime, source: str
) -> list[Signpost]:
    """On acceptance (in the move's unit of work): signposts when the service's predicted p90 to support is over
    ``threshold_days``; the signposted event goes with the transaction, after the acceptance."""
    if referral.status is not Status.ACCEPTED:
        return []
    estimate = (await uow.interim.estimates([referral.service_id])).get(referral.service_id)
    if estimate is None or not estimate.long_wait(threshold_days):
        return []
    signposts = await signpost(referral, SignpostTrigger.LONG_WAIT, uow.interim, uow.referrals, now=now)
    if signposts:
        uow.emit(signposted_event(referral, signposts, SignpostTrigger.LONG_WAIT, source), referral.id)
    return signposts


async def signpost_on_breach_alert(
    referral_id: str, referrals: ReferralRepository, interim: InterimRepository, *, now: datetime, source: str
) -> CloudEvent | None:
    """A clock of the referral nears breach (waitlists' alert): signposts it to fitting offers not yet
    signposted; the event to publish, or None (unknown or closed referral, nothing new fits)."""
    referral = await referrals.get(referral_id)
    if referral is None:
        return None
    signposts = await signpost(referral, SignpostTrigger.CLOCK_BREACH_IMMINENT, interim, referrals, now=now)
    if not signposts:
        return None
    return signposted_event(referral, signposts, SignpostTrigger.CLOCK_BREACH_IMMINENT, source)


async def signposts_of(referral_id: str, uow: UnitOfWork) -> list[Signpost]:
    async with uow:
        return await uow.interim.signposts_of(referral_id)


async def take_up(
    referral_id: str, offer_id: str, caller: Caller | FamilyCaller, uow: UnitOfWork, *, now: datetime, source: str
) -> Signpost:
    """Records that the family took up an offer the referral was signposted to, as the referral's referrer or
    receiver or the family (through their link) says; publishes the take-up. Recording it again changes nothing."""
    async with uow:
        referral = await uow.referrals.get(referral_id)
        if isinstance(caller, FamilyCaller):
            if referral is None or referral.child_ref != caller.child_ref:
                raise NotFound(referral_id)
            by = TakenUpBy.FAMILY
        else:
            if referral is None or not referral.seen_by(caller.organisation_id):
                raise NotFound(referral_id)
            if not referral.readable_by(caller.organisation_id, caller.role):
                raise NotYourReferral(f"the {caller.role} role of this organisation may not act on this referral")
            by = TakenUpBy.REFERRER if caller.role == TakenUpBy.REFERRER.value else TakenUpBy.RECEIVER
        found = next((s for s in await uow.interim.signposts_of(referral_id) if s.offer_id == offer_id), None)
        if found is None:
            raise SignpostNotFound(offer_id)
        if found.taken_up_at is not None:
            return found
        await uow.interim.take_up(referral_id, offer_id, now, by)
        taken = replace(found, taken_up_at=now, taken_up_by=by)
        uow.emit(taken_up_event(referral, taken, by, source), referral.id)
        await uow.commit()
    return taken


async def waiting_support(
    referral: Referral, uow: UnitOfWork
) -> tuple[WaitEstimate | None, list[tuple[Signpost, InterimOffer | None]]]:
    """The referral's service's predicted wait and the referral's signposts with their offers (for a caller
    already allowed to read the referral)."""
    async with uow:
        estimate = (await uow.interim.estimates([referral.service_id])).get(referral.service_id)
        signposts = await uow.interim.signposts_of(referral.id)
        offers = {o.id: o for o in await uow.interim.all_offers()} if signposts else {}
    return estimate, [(s, offers.get(s.offer_id)) for s in signposts]
