"""The SQL unit of work: one session, one transaction, the repositories on it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.repositories.consents import SqlConsentRepository
from notifications.adapters.repositories.deliveries import SqlDeliveryRepository
from notifications.adapters.repositories.digests import SqlDigestRepository
from notifications.adapters.repositories.directory import SqlDirectoryRepository
from notifications.adapters.repositories.emails import SqlEmailRepository
from notifications.adapters.repositories.endpoints import SqlEndpointRepository
from notifications.adapters.repositories.messages import SqlMessageRepository
from notifications.adapters.repositories.preferences import SqlPreferenceRepository
from notifications.adapters.repositories.referral_order import SqlReferralOrderRepository


class SqlUnitOfWork:
    """A new session for each ``async with``; what is not committed is rolled back on leaving it."""

    endpoints: SqlEndpointRepository
    deliveries: SqlDeliveryRepository
    messages: SqlMessageRepository
    referral_order: SqlReferralOrderRepository
    directory: SqlDirectoryRepository
    emails: SqlEmailRepository
    preferences: SqlPreferenceRepository
    digests: SqlDigestRepository
    consents: SqlConsentRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._owned = True

    @classmethod
    def within(cls, session: AsyncSession) -> SqlUnitOfWork:
        """The repositories in a transaction someone else owns (the consumer's, which commits the event
        with its inbox row): ``commit`` leaves it to them, and leaving does not end it."""
        uow = cls.__new__(cls)
        uow._session, uow._owned = session, False
        uow._bind(session)
        return uow

    async def __aenter__(self) -> Self:
        if self._owned:
            self._session = self._sessions()
            self._bind(self._session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()  # rolls back what was not committed

    async def flush(self) -> None:
        await self.referral_order.write_kept()

    async def commit(self) -> None:
        if self._owned and self._session is not None:
            await self.flush()
            await self._session.commit()

    def _bind(self, session: AsyncSession) -> None:
        self.endpoints = SqlEndpointRepository(session)
        self.deliveries = SqlDeliveryRepository(session)
        self.messages = SqlMessageRepository(session)
        self.referral_order = SqlReferralOrderRepository(session)
        self.directory = SqlDirectoryRepository(session)
        self.emails = SqlEmailRepository(session)
        self.preferences = SqlPreferenceRepository(session)
        self.digests = SqlDigestRepository(session)
        self.consents = SqlConsentRepository(session)
