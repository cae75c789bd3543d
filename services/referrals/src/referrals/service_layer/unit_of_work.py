"""Unit of work: one transaction holding the state change, its history and its outbox events.

A protocol, not a base class: the SQL unit of work (adapters) sits below the service layer and cannot
inherit from it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from referrals.service_layer.repositories import (
    AuditLog,
    ConsentRepository,
    DirectoryRepository,
    FamilyLinkRepository,
    InterimRepository,
    PrivacyRepository,
    ReferralClocksRepository,
    ReferralRepository,
)
from send_shared.events.envelope import CloudEvent


class UnitOfWork(Protocol):
    @property
    def referrals(self) -> ReferralRepository: ...
    @property
    def consents(self) -> ConsentRepository: ...
    @property
    def directory(self) -> DirectoryRepository: ...
    @property
    def audit_log(self) -> AuditLog: ...
    @property
    def privacy(self) -> PrivacyRepository: ...
    @property
    def family_links(self) -> FamilyLinkRepository: ...
    @property
    def referral_clocks(self) -> ReferralClocksRepository: ...
    @property
    def interim(self) -> InterimRepository: ...

    def emit(self, event: CloudEvent, key: str) -> None:
        """Publish an event that is not a referral change (directory events) with this transaction."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Rolls back whatever was not committed."""
        ...

    async def commit(self) -> None:
        """Records every new domain event of the referrals seen (history and outbox) and every consent event added
        (outbox, after the referral event of the version it was recorded at), then commits it all."""
        ...

    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
