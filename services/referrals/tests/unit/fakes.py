"""In-memory fakes of the referrals repositories and unit of work, for fast service-layer tests.

A unit of work works on a copy of the committed state and replaces it on commit, so a use case that fails
half-way leaves nothing behind, as a database transaction would."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from referrals.adapters.event_mapping import to_cloud_event
from referrals.adapters.referral_repository import ConcurrentUpdate, decode_cursor, encode_cursor
from referrals.domain.audit import AuditEntry, AuditQuery
from referrals.domain.child import PersonalDetails
from referrals.domain.directory import Organisation, Service
from referrals.domain.history import HistoryRecord, history_record
from referrals.domain.idempotency import StoredResponse
from referrals.domain.listing import ListFilter
from referrals.domain.model import Referral
from send_shared.events.envelope import CloudEvent

_event_ids = itertools.count(1)


@dataclass
class FakeState:
    referrals: dict[str, Referral] = field(default_factory=dict)
    people: dict[str, PersonalDetails] = field(default_factory=dict)
    history: list[HistoryRecord] = field(default_factory=list)
    responses: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    organisations: dict[str, Organisation] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    published: list[tuple[CloudEvent, str]] = field(default_factory=list)


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


class FakeDirectoryRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def service(self, service_id: str, *, include_inactive: bool = False) -> Service | None:
        service = self.state.services.get(service_id)
        return service if service is not None and (service.active or include_inactive) else None

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


class FakeUnitOfWork:
    def __init__(self, state: FakeState | None = None) -> None:
        self.committed = state if state is not None else FakeState()
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.working = copy.deepcopy(self.committed)
        self.referrals = FakeReferralRepository(self.working)
        self.directory = FakeDirectoryRepository(self.working)
        self.audit_log = FakeAuditLog(self.working)
        self.pending: list[tuple[CloudEvent, str]] = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    def emit(self, event: CloudEvent, key: str) -> None:
        self.pending.append((event, key))

    async def commit(self) -> None:
        for referral in self.referrals.seen:
            for change in referral.events:
                event_id = f"event-{next(_event_ids)}"
                self.working.history.append(history_record(referral, change, event_id))
                self.working.published.append(
                    (to_cloud_event(referral, change, source="/test", event_id=event_id), referral.id)
                )
            referral.events.clear()
        self.working.published += self.pending
        self.pending = []
        self.committed.__dict__.update(copy.deepcopy(self.working).__dict__)
        self.commits += 1

    async def rollback(self) -> None:
        self.working = copy.deepcopy(self.committed)
        self.referrals.state = self.directory.state = self.audit_log.state = self.working
