"""Units of work over the service's database: one session, its repositories, and the children and services
whose facts must be derived again before it commits."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters.alerts import SqlAlerts
from waitlists.adapters.clock_updates import SqlClockUpdates
from waitlists.adapters.directory import SqlDirectory
from waitlists.adapters.facts import SqlFacts
from waitlists.adapters.referrals import SqlReferrals
from waitlists.adapters.waits import SqlWaits

# Kept on the session, not on the unit of work: the consumer's handler and its before-commit step each see the
# runtime's session through a unit of work of their own.
_MARKED_CHILDREN = "waitlists.marked_children"
_MARKED_SERVICES = "waitlists.marked_services"


class _SessionWork:
    referrals: SqlReferrals
    directory: SqlDirectory
    facts: SqlFacts
    alerts: SqlAlerts
    clock_updates: SqlClockUpdates
    waits: SqlWaits
    _session: AsyncSession

    def _bind(self, session: AsyncSession) -> None:
        self._session = session
        self.referrals = SqlReferrals(session)
        self.directory = SqlDirectory(session)
        self.facts = SqlFacts(session)
        self.alerts = SqlAlerts(session)
        self.clock_updates = SqlClockUpdates(session)
        self.waits = SqlWaits(session)

    def mark_child(self, child_ref: str) -> None:
        self._marked(_MARKED_CHILDREN).add(child_ref)

    def mark_service(self, service_id: str) -> None:
        self._marked(_MARKED_SERVICES).add(service_id)

    def take_marked(self) -> tuple[set[str], set[str]]:
        """The children and services marked since the last take."""
        info = self._session.info
        return info.pop(_MARKED_CHILDREN, set()), info.pop(_MARKED_SERVICES, set())

    def _marked(self, key: str) -> set[str]:
        found: set[str] = self._session.info.setdefault(key, set())
        return found


class SqlUnitOfWork(_SessionWork):
    """A session of its own for each ``async with``; ``commit`` keeps what it wrote (it rolls back otherwise)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self._bind(self._sessions())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._session.rollback()
        await self._session.close()

    async def commit(self) -> None:
        await self.referrals.write_saved()
        await self._session.commit()


class JoinedUnitOfWork(_SessionWork):
    """A unit of work in a transaction someone else owns: the consumer runtime's, which commits it after the
    handler and the before-commit step, or rolls it back."""

    def __init__(self, session: AsyncSession) -> None:
        self._bind(session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        return None
