"""The family view: links a referrer or receiver makes for a family, and what the family's page shows and does.

A link opens the page of one child (its ``child_ref``): every referral of that child in this store, in plain
words, with no personal details beyond what the family gave and no professional's free text. Every view is
audited (subject ``family-link:<id>``, organisation and role ``family``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from referrals.domain.audit import AuditAction, AuditEntry
from referrals.domain.consent import ConsentRecord, ConsentStatus
from referrals.domain.deadlines import Deadline, current_deadline
from referrals.domain.directory import Organisation, Service
from referrals.domain.family import (
    FAMILY,
    GIVER_WORDS,
    FamilyContact,
    FamilyLink,
    LinkRefused,
    LinkState,
    NoContactEmail,
    link_lifetime,
    new_token,
    token_hash,
)
from referrals.domain.interim import InterimOffer, Signpost, wait_words
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral
from referrals.service_layer.callers import Caller, FamilyCaller
from referrals.service_layer.consent import ConsentChange, withdraw_consent
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.interim import take_up
from referrals.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

LONDON = ZoneInfo("Europe/London")


class LinkNotFound(NotFound):
    """No such link on this referral."""


async def _readable(referral_id: str, caller: Caller, uow: UnitOfWork) -> Referral:
    referral = await uow.referrals.get(referral_id)
    if referral is None or not referral.seen_by(caller.organisation_id):
        raise NotFound(referral_id)
    if not referral.readable_by(caller.organisation_id, caller.role):
        raise NotYourReferral(f"the {caller.role} role of this organisation may not read this referral")
    return referral


async def create_link(
    referral_id: str, caller: Caller, uow: UnitOfWork, *, email: str | None, days: int | None, now: datetime
) -> FamilyLink:
    """Makes a link to the child's page and queues the email carrying it, in one transaction. The token is
    in that email only; the store keeps its hash. ``email`` (if given) becomes the family's contact email."""
    lifetime = link_lifetime(days)
    async with uow:
        referral = await _readable(referral_id, caller, uow)
        contact = await uow.family_links.contact(referral_id)
        if contact is None:  # erased, or no person row: nobody to send it to
            raise NoContactEmail()
        if email:
            contact = FamilyContact(email, contact.phone, contact.preference)
            await uow.family_links.set_contact([referral_id], contact)
        if not contact.email:
            raise NoContactEmail()
        token = new_token()
        link = FamilyLink(
            id=str(uuid.uuid4()),
            token_hash=token_hash(token),
            child_ref=referral.child_ref,
            referral_id=referral_id,
            issued_by_org_id=caller.organisation_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        await uow.family_links.add(link, email_to=contact.email, token=token)
        await uow.commit()
    return link


async def list_links(referral_id: str, caller: Caller, uow: UnitOfWork) -> list[FamilyLink]:
    async with uow:
        await _readable(referral_id, caller, uow)
        return await uow.family_links.of_referral(referral_id)


async def revoke_link(referral_id: str, link_id: str, caller: Caller, uow: UnitOfWork, *, now: datetime) -> FamilyLink:
    """Revokes the link at once (revoking a revoked link changes nothing)."""
    async with uow:
        await _readable(referral_id, caller, uow)
        link = await uow.family_links.get(link_id)
        if link is None or link.referral_id != referral_id:
            raise LinkNotFound(link_id)
        if link.revoked_at is None:
            await uow.family_links.revoke(link_id, now, f"{caller.organisation_id}:{caller.subject}"[:200])
            await uow.commit()
        return await uow.family_links.get(link_id) or link


# --- the family's page -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceContact:
    phone: str | None
    email: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class FamilySignpost:
    """An interim offer the referral was signposted to, as the family sees it."""

    offer_id: str
    name: str
    description: str
    provider_name: str
    contact: ServiceContact
    taken_up: bool


@dataclass(frozen=True, slots=True)
class ReferralCard:
    """One referral as the family sees it: names and plain words only."""

    referral_id: str
    service_name: str
    organisation_name: str
    status: Status
    referred_on: date
    since: date | None
    hold_reason_code: str | None
    expected_resume: date | None
    handed_to: str | None
    came_from: str | None
    rejection_reason_code: str | None
    outcome_code: str | None
    contact: ServiceContact
    consent_status: ConsentStatus | None
    consent_given_by: str | None
    shared_with: tuple[str, ...]
    deadline: Deadline | None = None
    """The deadline that applies, as waitlists last told its clocks (never worked out here)."""
    wait: str | None = None
    """How long children wait at the service, in plain words (waitlists' prediction); while waiting to start."""
    signposts: tuple[FamilySignpost, ...] = ()
    """Support while waiting the referral was signposted to."""

    @property
    def is_open(self) -> bool:
        return self.status not in (
            Status.COMPLETED, Status.WITHDRAWN, Status.REJECTED, Status.HANDED_OFF, Status.ENTERED_IN_ERROR
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FamilyPage:
    link: FamilyLink
    cards: list[ReferralCard]
    contact: FamilyContact
    may_withdraw: bool = field(default=False)


def _refuse_unless_active(link: FamilyLink | None, now: datetime) -> FamilyLink:
    if link is None:
        raise LinkRefused(None)
    state = link.state(now)
    if state is not LinkState.ACTIVE:
        raise LinkRefused(state)
    return link


async def _active_link(token: str, uow: UnitOfWork, now: datetime) -> FamilyLink:
    return _refuse_unless_active(await uow.family_links.by_token_hash(token_hash(token)), now)


def _audit(link: FamilyLink, action: AuditAction, referral_id: str | None, now: datetime) -> AuditEntry:
    return AuditEntry(
        at=now, subject=f"family-link:{link.id}", organisation_id=FAMILY, role=FAMILY, action=action,
        referral_id=referral_id,
    )  # fmt: skip


async def link_for_token(token: str, uow: UnitOfWork, *, now: datetime) -> FamilyLink:
    """The active link of ``token`` (LinkRefused otherwise); reads nothing else, writes nothing."""
    async with uow:
        return await _active_link(token, uow, now)


async def open_page(token: str, uow: UnitOfWork, *, now: datetime) -> FamilyPage:
    """What the family's page shows; the view is audited, once per referral shown."""
    async with uow:
        link = await _active_link(token, uow, now)
        referrals = await uow.family_links.child_referrals(link.child_ref)
        services = {s.id: s for s in await uow.directory.all_services()}
        organisations = {o.id: o for o in await uow.directory.all_organisations()}
        clocks = await uow.referral_clocks.clocks_of([r.id for r in referrals])
        estimates = await uow.interim.estimates(list({r.service_id for r in referrals}))
        offers = {o.id: o for o in await uow.interim.all_offers()}
        today = now.astimezone(LONDON).date()
        cards = []
        for referral in referrals:
            consent = await uow.consents.history(referral.id)
            card = _card(referral, referrals, services, organisations, consent[-1] if consent else None)
            waiting = card.is_open and referral.status is not Status.IN_PROGRESS
            signposts = [
                _family_signpost(s, offers[s.offer_id], organisations)
                for s in await uow.interim.signposts_of(referral.id)
                if s.offer_id in offers and card.is_open
            ]
            cards.append(
                replace(
                    card,
                    deadline=current_deadline(clocks.get(referral.id, []), today),
                    wait=wait_words(estimates.get(referral.service_id)) if waiting else None,
                    signposts=tuple(signposts),
                )
            )
            await uow.audit_log.add(_audit(link, AuditAction.FAMILY_VIEW, referral.id, now))
        contact = await uow.family_links.contact(link.referral_id) or FamilyContact()
        await uow.family_links.used(link.id, now)
        await uow.commit()
    may_withdraw = any(c.is_open and c.consent_status not in (None, ConsentStatus.WITHDRAWN) for c in cards)
    return FamilyPage(link, cards, contact, may_withdraw)


async def update_contact(token: str, contact: FamilyContact, uow: UnitOfWork, *, now: datetime) -> FamilyLink:
    """The family's new contact details, on every referral of the child (audited)."""
    async with uow:
        link = await _active_link(token, uow, now)
        referrals = await uow.family_links.child_referrals(link.child_ref)
        await uow.family_links.set_contact([r.id for r in referrals], contact)
        await uow.audit_log.add(_audit(link, AuditAction.FAMILY_CONTACT, link.referral_id, now))
        await uow.family_links.used(link.id, now)
        await uow.commit()
    return link


def _family_signpost(signpost: Signpost, offer: InterimOffer, organisations: dict[str, Organisation]) -> FamilySignpost:
    provider = organisations.get(offer.provider_org_id)
    return FamilySignpost(
        offer_id=offer.id,
        name=offer.name,
        description=offer.description,
        provider_name=provider.name if provider else "",
        contact=ServiceContact(offer.contact_phone, offer.contact_email, offer.contact_url),
        taken_up=signpost.taken_up_at is not None,
    )


async def take_up_offer(
    token: str, position: int, offer_id: str, uow_factory: UnitOfWorkFactory, *, now: datetime, source: str
) -> None:
    """The family says they took up support they were signposted to on one of their child's referrals: the one at
    ``position`` (1 for the first) on their page, which shows no referral id."""
    async with uow_factory() as uow:
        link = await _active_link(token, uow, now)
        referrals = await uow.family_links.child_referrals(link.child_ref)
        if not 1 <= position <= len(referrals):
            raise NotFound(str(position))
        referral_id = referrals[position - 1].id
        await uow.family_links.used(link.id, now)
        await uow.commit()
    await take_up(referral_id, offer_id, FamilyCaller(link.id, link.child_ref), uow_factory(), now=now, source=source)


def _card(
    referral: Referral,
    siblings: list[Referral],
    services: dict[str, Service],
    organisations: dict[str, Organisation],
    consent: ConsentRecord | None,
) -> ReferralCard:
    def service_name(service_id: str | None) -> str | None:
        if service_id is None:
            return None
        service = services.get(service_id)
        return service.name if service else "another service"

    by_id = {r.id: r for r in siblings}
    service = services.get(referral.service_id)
    organisation = organisations.get(referral.receiving_org_id)
    handed_to = by_id.get(referral.linked_to_id or "")
    came_from = by_id.get(referral.linked_from_id or "")
    details = referral.last_details
    shared_with: list[str] = []
    if consent is not None and consent.status is not ConsentStatus.WITHDRAWN:
        shared_with.append(service_name(referral.service_id) or "this service")
        shared_with += [service_name(s) or "" for s in consent.scope.service_ids if s != referral.service_id]
        shared_with += [
            f"any service of {organisations[o].name}" if o in organisations else "another organisation"
            for o in consent.scope.organisation_ids
        ]
    return ReferralCard(
        referral_id=referral.id,
        service_name=service.name if service else "A service",
        organisation_name=organisation.name if organisation else "",
        status=referral.status,
        referred_on=referral.referred_at.date(),
        since=referral.status_at.date() if referral.status_at else None,
        hold_reason_code=details.reason_code if referral.status is Status.ON_HOLD else None,
        expected_resume=details.expected_resume if referral.status is Status.ON_HOLD else None,
        handed_to=service_name(handed_to.service_id) if handed_to else None,
        came_from=service_name(came_from.service_id) if came_from else None,
        rejection_reason_code=details.reason_code if referral.status is Status.REJECTED else None,
        outcome_code=details.outcome_code if referral.status is Status.COMPLETED else None,
        contact=ServiceContact(
            service.contact_phone if service else None,
            service.contact_email if service else None,
            service.contact_url if service else None,
        ),
        consent_status=consent.status if consent else None,
        consent_given_by=GIVER_WORDS.get(consent.given_by) if consent else None,
        shared_with=tuple(dict.fromkeys(s for s in shared_with if s)),
    )


async def withdraw_all_consent(token: str, uow_factory: UnitOfWorkFactory, *, now: datetime) -> int:
    """The family says no to sharing: consent withdrawn on each open referral of the child whose consent is in
    force (by whoever gave it), each its own transaction (``consent.withdraw_consent``); returns how many."""
    async with uow_factory() as uow:
        link = await _active_link(token, uow, now)
        referrals = [r for r in await uow.family_links.child_referrals(link.child_ref) if r.is_open]
        in_force = {}
        for referral in referrals:
            history = await uow.consents.history(referral.id)
            if history and history[-1].status is not ConsentStatus.WITHDRAWN:
                in_force[referral.id] = history[-1]
        await uow.family_links.used(link.id, now)
        await uow.commit()
    caller = FamilyCaller(link.id, link.child_ref)
    for referral_id, record in in_force.items():
        await withdraw_consent(ConsentChange(referral_id, record.given_by), caller, uow_factory())
    return len(in_force)
