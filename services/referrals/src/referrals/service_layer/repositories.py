"""What the use cases need from storage. The SQL repositories (adapters) and the in-memory fakes (tests)
provide it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.audit import AuditEntry, AuditQuery
from referrals.domain.child import PersonalDetails
from referrals.domain.consent import ConsentRecord
from referrals.domain.deadlines import ClockState, ReferralClocks
from referrals.domain.directory import Organisation, Service
from referrals.domain.family import FamilyContact, FamilyLink, LinkEmail
from referrals.domain.history import HistoryRecord
from referrals.domain.idempotency import StoredResponse
from referrals.domain.interim import InterimOffer, Signpost, TakenUpBy, WaitEstimate
from referrals.domain.listing import ListFilter
from referrals.domain.model import Referral
from referrals.domain.privacy import PersonRecord


class ReferralRepository(Protocol):
    seen: set[Referral]
    """Every referral added or read for update in this unit of work: its new events are committed with it."""

    async def add(self, referral: Referral, person: PersonalDetails) -> None: ...
    async def get(self, referral_id: str, *, for_update: bool = False) -> Referral | None: ...
    async def save(self, referral: Referral, *, expected_version: int) -> None: ...
    async def open_for_child(self, child_ref: str) -> list[Referral]: ...
    async def person(self, referral_id: str) -> PersonalDetails | None: ...
    async def visible(self, f: ListFilter, *, limit: int, cursor: str | None) -> tuple[list[Referral], str | None]:
        """Newest first; a cursor this repository did not issue is a ValueError."""
        ...

    async def history(self, referral_id: str) -> list[HistoryRecord]: ...
    async def stored_response(self, organisation_id: str, key: str) -> StoredResponse | None: ...
    async def store_response(self, organisation_id: str, key: str, response: StoredResponse) -> None:
        """Written when the unit of work commits (``stored_response`` does not see it before)."""
        ...


class ConsentRepository(Protocol):
    added: list[tuple[Referral, ConsentRecord]]
    """Consent events recorded in this unit of work: committed with it, each published as its event."""

    async def add(self, referral: Referral, record: ConsentRecord) -> None:
        """Written when the unit of work commits (``history`` does not see it before)."""
        ...

    async def history(self, referral_id: str) -> list[ConsentRecord]:
        """Every consent event of the referral, oldest first; the last is in force."""
        ...


class PrivacyRepository(Protocol):
    """Erasure and subject access (domain/privacy.py): the child's personal data row as held, its tombstone, and
    what an export gathers."""

    async def person_record(self, referral_id: str) -> PersonRecord | None:
        """The personal data row as stored, erased or not; None if the referral has none."""
        ...

    async def erase(self, referral_id: str, *, at: datetime, by_org_id: str) -> None:
        """Blanks the child's names, date of birth, NHS number, UPN, reason and contact details (keeping the
        tombstone: ``at``, ``by_org_id``), the consent notes, and the addresses of the family link emails sent
        on this referral. Nothing else changes: the referral, its history, consent codes and events stay."""
        ...

    async def referrals_of_child(
        self, child_refs: Sequence[str], *, nhs_number: str | None, upn: str | None
    ) -> list[Referral]:
        """Every referral whose child reference is one of ``child_refs`` or whose personal data carries the NHS
        number or UPN, oldest first (whoever sent or received it: the use case keeps the caller's)."""
        ...

    async def audit_entries(self, referral_ids: Sequence[str]) -> list[AuditEntry]:
        """Every audit entry about these referrals, oldest first."""
        ...


class ReferralClocksRepository(Protocol):
    """Each referral's clocks as waitlists last told them (never worked out here)."""

    async def keep(self, clocks: ReferralClocks) -> bool:
        """Holds them unless clocks of a newer referral version are held; returns whether they were kept."""
        ...

    async def clocks_of(self, referral_ids: Sequence[str]) -> dict[str, list[ClockState]]:
        """The clocks held of each of these referrals (a referral with none held is left out)."""
        ...


class DirectoryRepository(Protocol):
    async def service(self, service_id: str, *, include_inactive: bool = False) -> Service | None: ...
    async def service_with_estimate(self, service_id: str) -> tuple[Service, WaitEstimate | None] | None:
        """The active service and the wait waitlists last predicted there (None before any)."""
        ...

    async def organisation(self, organisation_id: str) -> Organisation | None: ...
    async def all_services(self) -> list[Service]: ...
    async def all_organisations(self) -> list[Organisation]: ...
    async def save_organisation(self, org: Organisation) -> Organisation:
        """Insert or replace; returns it with its new version."""
        ...

    async def save_service(self, service: Service) -> Service:
        """Insert or replace; returns it with its new version."""
        ...


class InterimRepository(Protocol):
    """Support while waiting: interim offers, each service's wait estimate as waitlists last told it, and the
    signposts of each referral."""

    async def offer(self, offer_id: str) -> InterimOffer | None: ...
    async def all_offers(self) -> list[InterimOffer]:
        """Every offer, active or not, by id."""
        ...

    async def save_offer(self, offer: InterimOffer) -> InterimOffer:
        """Insert or replace; returns it with its new version."""
        ...

    async def keep_estimate(self, estimate: WaitEstimate) -> bool:
        """Holds it unless an estimate of a later ``as_of`` is held for the service; returns whether it was kept."""
        ...

    async def estimates(self, service_ids: Sequence[str] | None = None) -> dict[str, WaitEstimate]:
        """The estimate held of each of these services (every service's when None)."""
        ...

    async def signposts_of(self, referral_id: str) -> list[Signpost]:
        """Oldest first."""
        ...

    async def add_signposts(self, signposts: Sequence[Signpost]) -> None: ...
    async def take_up(self, referral_id: str, offer_id: str, at: datetime, by: TakenUpBy) -> None: ...


class AuditLog(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...
    async def entries(self, query: AuditQuery) -> list[AuditEntry]: ...


class FamilyLinkRepository(Protocol):
    """Family view links (only a hash of each token), their queued emails, and the family's contact details."""

    async def add(self, link: FamilyLink, *, email_to: str, token: str) -> None:
        """Stores the link and queues the email that carries ``token`` (kept until sent)."""
        ...

    async def get(self, link_id: str) -> FamilyLink | None: ...
    async def by_token_hash(self, token_hash: str) -> FamilyLink | None: ...
    async def of_referral(self, referral_id: str) -> list[FamilyLink]:
        """Newest first."""
        ...

    async def revoke(self, link_id: str, at: datetime, by: str) -> None: ...
    async def used(self, link_id: str, at: datetime) -> None: ...
    async def child_referrals(self, child_ref: str) -> list[Referral]:
        """Every referral of the child in this store, open or closed, oldest first."""
        ...

    async def contact(self, referral_id: str) -> FamilyContact | None:
        """None when the referral has no person row (or it was erased)."""
        ...

    async def set_contact(self, referral_ids: list[str], contact: FamilyContact) -> None:
        """On each of these referrals that is not erased."""
        ...

    async def due_emails(self, now: datetime, *, limit: int) -> list[LinkEmail]: ...
    async def email_sent(self, email_id: int, at: datetime) -> None:
        """Marks it sent and forgets its token."""
        ...

    async def email_failed(self, email_id: int, attempts: int, error: str, retry_at: datetime | None) -> None:
        """Records the failure; ``retry_at`` None gives up (and forgets the token)."""
        ...
