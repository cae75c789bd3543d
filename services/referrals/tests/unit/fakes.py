"""In-memory fakes of the referrals repositories and unit of work, for fast service-layer tests.

A unit of work works on a copy of the committed state and replaces it on commit, so a use case that fails
half-way leaves nothing behind, as a database transaction would."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from referrals.adapters.event_mapping import consent_cloud_event, ordered_events, to_cloud_event
from referrals.adapters.referral_repository import ConcurrentUpdate, decode_cursor, encode_cursor
from referrals.domain.audit import AuditEntry, AuditQuery
from referrals.domain.child import PersonalDetails
from referrals.domain.consent import ConsentRecord
from referrals.domain.deadlines import ClockState, ReferralClocks
from referrals.domain.directory import Organisation, Service
from referrals.domain.family import FamilyContact, FamilyLink, LinkEmail
from referrals.domain.history import HistoryRecord, history_record
from referrals.domain.idempotency import StoredResponse
from referrals.domain.interim import InterimOffer, Signpost, TakenUpBy, WaitEstimate
from referrals.domain.listing import ListFilter
from referrals.domain.model import Referral
from referrals.domain.privacy import PersonRecord, Tombstone
from send_shared.events.envelope import CloudEvent

_event_ids = itertools.count(1)


@dataclass
class FakeState:
    referrals: dict[str, Referral] = field(default_factory=dict)
    people: dict[str, PersonalDetails] = field(default_factory=dict)
    consents: dict[str, list[ConsentRecord]] = field(default_factory=dict)
    erased: dict[str, Tombstone] = field(default_factory=dict)  # people erased: their tombstones
    history: list[HistoryRecord] = field(default_factory=list)
    responses: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    organisations: dict[str, Organisation] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    published: list[tuple[CloudEvent, str]] = field(default_factory=list)
    family_links: dict[str, FamilyLink] = field(default_factory=dict)
    family_emails: dict[int, dict[str, object]] = field(default_factory=dict)
    family_contacts: dict[str, FamilyContact] = field(default_factory=dict)
    clocks: dict[str, ReferralClocks] = field(default_factory=dict)  # as waitlists last told them, by referral
    offers: dict[str, InterimOffer] = field(default_factory=dict)
    estimates: dict[str, WaitEstimate] = field(default_factory=dict)  # as waitlists last told them, by service
    signposts: dict[tuple[str, str], Signpost] = field(default_factory=dict)  # by (referral, offer)


class FakeReferralRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.seen: set[Referral] = set()

    async def add(self, referral: Referral, person: PersonalDetails) -> None:
        assert referral.id not in self.state.referrals
        self.state.referrals[referral.id] = referral
        self.state.people[referral.id] = person
        self.seen.add(referral)

    async def get(self, referral_id: str, *, for_update: bool = False) -> Referral | None:
        stored = self.state.referrals.get(referral_id)
        if stored is None:
            return None
        referral = copy.deepcopy(stored)
        self.seen.add(referral)
        return referral

    async def save(self, referral: Referral, *, expected_version: int) -> None:
        if self.state.referrals[referral.id].version != expected_version:
            raise ConcurrentUpdate(referral.id)
        self.state.referrals[referral.id] = referral

    async def open_for_child(self, child_ref: str) -> list[Referral]:
        return [copy.deepcopy(r) for r in self.state.referrals.values() if r.child_ref == child_ref and r.is_open]

    async def person(self, referral_id: str) -> PersonalDetails | None:
        return self.state.people.get(referral_id)

    async def visible(self, f: ListFilter, *, limit: int, cursor: str | None) -> tuple[list[Referral], str | None]:
        def listed(r: Referral) -> bool:
            party = {"referrer": r.referrer_org_id, "receiver": r.receiving_org_id}.get(f.role)
            return (
                party == f.organisation_id
                and f.status in (None, r.status)
                and f.service_id in (None, r.service_id)
                and f.urgency in (None, r.urgency)
                and (f.referred_from is None or r.referred_at >= f.referred_from)
                and (f.referred_to is None or r.referred_at <= f.referred_to)
            )

        found = sorted(filter(listed, self.state.referrals.values()), key=lambda r: (r.referred_at, r.id), reverse=True)
        if cursor:
            after = decode_cursor(cursor)
            found = [r for r in found if (r.referred_at, r.id) < after]
        next_cursor = encode_cursor(found[limit - 1]) if len(found) > limit else None
        return [copy.deepcopy(r) for r in found[:limit]], next_cursor

    async def history(self, referral_id: str) -> list[HistoryRecord]:
        return sorted((h for h in self.state.history if h.referral_id == referral_id), key=lambda h: h.version)

    async def stored_response(self, organisation_id: str, key: str) -> StoredResponse | None:
        return self.state.responses.get((organisation_id, key))

    async def store_response(self, organisation_id: str, key: str, response: StoredResponse) -> None:
        self.state.responses[(organisation_id, key)] = response


class FakeConsentRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.added: list[tuple[Referral, ConsentRecord]] = []

    async def add(self, referral: Referral, record: ConsentRecord) -> None:
        records = self.state.consents.setdefault(record.referral_id, [])
        assert all(r.version != record.version for r in records), "consent version taken"  # the primary key
        records.append(record)
        self.added.append((referral, record))

    async def history(self, referral_id: str) -> list[ConsentRecord]:
        return sorted(self.state.consents.get(referral_id, []), key=lambda r: r.version)


class FakePrivacyRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def person_record(self, referral_id: str) -> PersonRecord | None:
        tombstone = self.state.erased.get(referral_id)
        p = self.state.people.get(referral_id)
        if tombstone is None and p is None:
            return None
        return PersonRecord(
            given_name=p.given_name if p else None,
            family_name=p.family_name if p else None,
            date_of_birth=p.date_of_birth if p else None,
            nhs_number=p.nhs_number if p else None,
            upn=p.upn if p else None,
            reason=p.reason if p else None,
            contact_email=None,
            contact_phone=None,
            contact_preference=None,
            erased_at=tombstone.erased_at if tombstone else None,
            erased_by_org_id=tombstone.erased_by_org_id if tombstone else None,
        )

    async def erase(self, referral_id: str, *, at: datetime, by_org_id: str) -> None:
        self.state.people.pop(referral_id, None)
        self.state.erased[referral_id] = Tombstone(at, by_org_id)
        notes = self.state.consents.get(referral_id, [])
        self.state.consents[referral_id] = [replace(record, note=None) for record in notes]

    async def referrals_of_child(
        self, child_refs: Sequence[str], *, nhs_number: str | None, upn: str | None
    ) -> list[Referral]:
        def matches(r: Referral) -> bool:
            p = self.state.people.get(r.id)
            return (
                r.child_ref in child_refs
                or (p is not None and nhs_number is not None and p.nhs_number == nhs_number)
                or (p is not None and upn is not None and p.upn == upn)
            )

        found = sorted(filter(matches, self.state.referrals.values()), key=lambda r: (r.referred_at, r.id))
        return [copy.deepcopy(r) for r in found]

    async def audit_entries(self, referral_ids: Sequence[str]) -> list[AuditEntry]:
        return sorted((e for e in self.state.audit if e.referral_id in referral_ids), key=lambda e: e.at)


class FakeDirectoryRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def service(self, service_id: str, *, include_inactive: bool = False) -> Service | None:
        service = self.state.services.get(service_id)
        return service if service is not None and (service.active or include_inactive) else None

    async def service_with_estimate(self, service_id: str) -> tuple[Service, WaitEstimate | None] | None:
        service = await self.service(service_id)
        return (service, self.state.estimates.get(service_id)) if service is not None else None

    async def organisation(self, organisation_id: str) -> Organisation | None:
        return self.state.organisations.get(organisation_id)

    async def all_services(self) -> list[Service]:
        return sorted(self.state.services.values(), key=lambda s: s.id)

    async def all_organisations(self) -> list[Organisation]:
        return sorted(self.state.organisations.values(), key=lambda o: o.id)

    async def save_organisation(self, org: Organisation) -> Organisation:
        current = self.state.organisations.get(org.id)
        saved = replace(org, version=1 if current is None else current.version + 1)
        self.state.organisations[org.id] = saved
        return saved

    async def save_service(self, service: Service) -> Service:
        current = self.state.services.get(service.id)
        saved = replace(service, version=1 if current is None else current.version + 1)
        self.state.services[service.id] = saved
        return saved


class FakeAuditLog:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def add(self, entry: AuditEntry) -> None:
        self.state.audit.append(entry)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        found = [
            e
            for e in reversed(self.state.audit)
            if query.referral_id in (None, e.referral_id)
            and query.organisation_id in (None, e.organisation_id)
            and (query.since is None or e.at >= query.since)
        ]
        return found[: query.limit]


class FakeFamilyLinkRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def add(self, link: FamilyLink, *, email_to: str, token: str) -> None:
        assert all(other.token_hash != link.token_hash for other in self.state.family_links.values())
        self.state.family_links[link.id] = link
        email_id = len(self.state.family_emails) + 1
        self.state.family_emails[email_id] = {
            "id": email_id, "link_id": link.id, "to": email_to, "token": token, "attempts": 0,
            "queued_at": link.created_at, "next": link.created_at, "sent_at": None, "error": None,
        }  # fmt: skip

    async def get(self, link_id: str) -> FamilyLink | None:
        return self.state.family_links.get(link_id)

    async def by_token_hash(self, token_hash: str) -> FamilyLink | None:
        return next((x for x in self.state.family_links.values() if x.token_hash == token_hash), None)

    async def of_referral(self, referral_id: str) -> list[FamilyLink]:
        found = [x for x in self.state.family_links.values() if x.referral_id == referral_id]
        return sorted(found, key=lambda x: x.created_at, reverse=True)

    async def revoke(self, link_id: str, at: datetime, by: str) -> None:
        link = self.state.family_links[link_id]
        if link.revoked_at is None:
            self.state.family_links[link_id] = replace(link, revoked_at=at, revoked_by=by)
        for email in self.state.family_emails.values():
            if email["link_id"] == link_id and email["sent_at"] is None:
                email.update(token=None, next=None)

    async def used(self, link_id: str, at: datetime) -> None:
        self.state.family_links[link_id] = replace(self.state.family_links[link_id], last_used_at=at)

    async def child_referrals(self, child_ref: str) -> list[Referral]:
        found = [copy.deepcopy(r) for r in self.state.referrals.values() if r.child_ref == child_ref]
        return sorted(found, key=lambda r: (r.referred_at, r.id))

    async def contact(self, referral_id: str) -> FamilyContact | None:
        if referral_id not in self.state.people:
            return None
        return self.state.family_contacts.get(referral_id, FamilyContact())

    async def set_contact(self, referral_ids: list[str], contact: FamilyContact) -> None:
        for referral_id in referral_ids:
            if referral_id in self.state.people:
                self.state.family_contacts[referral_id] = contact

    async def due_emails(self, now: datetime, *, limit: int) -> list[LinkEmail]:
        due = [
            e for e in self.state.family_emails.values()
            if e["sent_at"] is None and e["token"] is not None and e["next"] is not None and e["next"] <= now  # type: ignore[operator]
        ]  # fmt: skip
        return [
            LinkEmail(e["id"], e["link_id"], e["to"], e["token"], e["attempts"], e["queued_at"])  # type: ignore[arg-type]
            for e in due[:limit]
        ]

    async def email_sent(self, email_id: int, at: datetime) -> None:
        email = self.state.family_emails[email_id]
        email.update(sent_at=at, token=None, next=None, attempts=int(email["attempts"]) + 1)  # type: ignore[call-overload]

    async def email_failed(self, email_id: int, attempts: int, error: str, retry_at: datetime | None) -> None:
        email = self.state.family_emails[email_id]
        email.update(attempts=attempts, error=error, next=retry_at)
        if retry_at is None:
            email["token"] = None


class FakeReferralClocks:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def keep(self, clocks: ReferralClocks) -> bool:
        held = self.state.clocks.get(clocks.referral_id)
        if held is not None and held.referral_version > clocks.referral_version:
            return False
        self.state.clocks[clocks.referral_id] = clocks
        return True

    async def clocks_of(self, referral_ids: Sequence[str]) -> dict[str, list[ClockState]]:
        return {rid: list(self.state.clocks[rid].clocks) for rid in referral_ids if rid in self.state.clocks}


class FakeInterim:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def offer(self, offer_id: str) -> InterimOffer | None:
        return self.state.offers.get(offer_id)

    async def all_offers(self) -> list[InterimOffer]:
        return [self.state.offers[k] for k in sorted(self.state.offers)]

    async def save_offer(self, offer: InterimOffer) -> InterimOffer:
        held = self.state.offers.get(offer.id)
        saved = replace(offer, version=held.version + 1 if held else 1)
        self.state.offers[offer.id] = saved
        return saved

    async def keep_estimate(self, estimate: WaitEstimate) -> bool:
        held = self.state.estimates.get(estimate.service_id)
        if held is not None and held.as_of > estimate.as_of:
            return False
        self.state.estimates[estimate.service_id] = estimate
        return True

    async def estimates(self, service_ids: Sequence[str] | None = None) -> dict[str, WaitEstimate]:
        return {k: v for k, v in self.state.estimates.items() if service_ids is None or k in service_ids}

    async def signposts_of(self, referral_id: str) -> list[Signpost]:
        found = [s for (r, _), s in self.state.signposts.items() if r == referral_id]
        return sorted(found, key=lambda s: (s.signposted_at, s.position))

    async def add_signposts(self, signposts: Sequence[Signpost]) -> None:
        for s in signposts:
            assert (s.referral_id, s.offer_id) not in self.state.signposts
            self.state.signposts[(s.referral_id, s.offer_id)] = s

    async def take_up(self, referral_id: str, offer_id: str, at: datetime, by: TakenUpBy) -> None:
        held = self.state.signposts[(referral_id, offer_id)]
        self.state.signposts[(referral_id, offer_id)] = replace(held, taken_up_at=at, taken_up_by=by)


class FakeUnitOfWork:
    def __init__(self, state: FakeState | None = None) -> None:
        self.committed = state if state is not None else FakeState()
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.working = copy.deepcopy(self.committed)
        self.referrals = FakeReferralRepository(self.working)
        self.consents = FakeConsentRepository(self.working)
        self.directory = FakeDirectoryRepository(self.working)
        self.audit_log = FakeAuditLog(self.working)
        self.family_links = FakeFamilyLinkRepository(self.working)
        self.privacy = FakePrivacyRepository(self.working)
        self.referral_clocks = FakeReferralClocks(self.working)
        self.interim = FakeInterim(self.working)
        self.pending: list[tuple[CloudEvent, str]] = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    def emit(self, event: CloudEvent, key: str) -> None:
        self.pending.append((event, key))

    async def commit(self) -> None:
        consents: dict[str, list[ConsentRecord]] = {}
        holders: dict[str, Referral] = {}
        for holder, record in self.consents.added:
            consents.setdefault(record.referral_id, []).append(record)
            holders.setdefault(record.referral_id, holder)
        self.consents.added = []
        seen = list(self.referrals.seen)
        seen_ids = {r.id for r in seen}
        for referral in [*seen, *(r for i, r in holders.items() if i not in seen_ids)]:
            for item in ordered_events(referral, referral.events, consents.pop(referral.id, [])):
                if isinstance(item, ConsentRecord):
                    self.working.published.append((consent_cloud_event(referral, item, source="/test"), referral.id))
                    continue
                event_id = f"event-{next(_event_ids)}"
                self.working.history.append(history_record(referral, item, event_id))
                self.working.published.append(
                    (to_cloud_event(referral, item, source="/test", event_id=event_id), referral.id)
                )
            referral.events.clear()
        self.working.published += self.pending
        self.pending = []
        self.committed.__dict__.update(copy.deepcopy(self.working).__dict__)
        self.commits += 1

    async def rollback(self) -> None:
        self.working = copy.deepcopy(self.committed)
        self.referrals.state = self.consents.state = self.directory.state = self.audit_log.state = (
            self.privacy.state
        ) = self.working
        self.family_links.state = self.working
        self.referral_clocks.state = self.working
        self.interim.state = self.working
