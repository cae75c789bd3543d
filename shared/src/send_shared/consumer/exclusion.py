"""A consumer group's claim on its own database, so that a rebuild of what the group builds never runs
beside the group's consumers.

Every running consumer of a group holds the group's lock shared; a rebuild takes it exclusively, and
is refused while any consumer holds it (a consumer that starts meanwhile waits for the rebuild). The
lock lives with the database, not the broker (an embedded broker keeps a dead member in its groups for
ever): on PostgreSQL a session advisory lock on a connection of its own, on SQLite a file lock beside
the database file. Both go with the process that held them, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

_NAMESPACE = 0x5E0E


class GroupBusy(Exception):
    """The group's consumers are running (or another rebuild is)."""


class GroupLock:
    def __init__(self, engine: AsyncEngine, group: str) -> None:
        self.url = make_url(engine.url)
        self.group = group
        self._key = zlib.crc32(group.encode()) & 0x7FFFFFFF
        self._held: Any = None

    async def try_shared(self) -> bool:
        return await self._try(shared=True)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        if not await self._try(shared=False):
            raise GroupBusy(self.group)
        try:
            yield
        finally:
            await self.release()

    async def _try(self, *, shared: bool) -> bool:
        if self.url.get_backend_name() == "postgresql":
            import asyncpg

            conn = await asyncpg.connect(self.url.set(drivername="postgresql").render_as_string(hide_password=False))
            function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            if await conn.fetchval(f"SELECT {function}($1, $2)", _NAMESPACE, self._key):
                self._held = conn
                return True
            await conn.close()
            return False
        self._held = await asyncio.to_thread(_lock_file, Path(f"{self.url.database}.{self.group}.lock"), shared)
        return self._held is not None

    @property
    def held(self) -> bool:
        """Still held: a terminated database connection takes its advisory locks with it."""
        if self._held is None:
            return False
        return not self._held.is_closed() if hasattr(self._held, "is_closed") else True

    async def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if hasattr(held, "fetchval"):
            await held.close()  # the session's advisory locks go with it
        else:
            await asyncio.to_thread(held.close)  # closing the file releases the flock


def _lock_file(path: Path, shared: bool) -> Any:
    handle = path.open("a")  # held open as long as the lock
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
