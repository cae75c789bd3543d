"""``send_shared.direct.execute`` gives what SQLAlchemy's ``execute`` gives, in the same transaction, on PostgreSQL
(straight on asyncpg, the transaction begun on the driver if need be) and SQLite (through SQLAlchemy): the same rows with the same
types, the same counts, the same errors; and on PostgreSQL it does not go through SQLAlchemy's execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import AsyncSession as Session

from send_shared.db import InList, UtcDateTime, create_engine
from send_shared.direct import execute

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
AT = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
BODY = {"a": [1, 2, {"b": None}], "c": "é"}

_BY_ID = select(things.c.body, things.c.at, things.c.n).where(things.c.id == bindparam("id"))
_ADD = insert(things)
_BUMP = update(things).where(things.c.n >= bindparam("least")).values(n=things.c.n + 1)
_IN = select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True))).order_by(things.c.id)
_IN_LIST = select(things.c.id).where(InList(things.c.id, "ids")).order_by(things.c.id)
_COUNT = select(func.count()).select_from(things)
_COUNT_IN = select(func.count()).where(InList(things.c.id, "ids"))  # things only through InList: FROM has it
_N_OF = select(things.c.n).where(things.c.id == bindparam("id"))
_MEAN = select(
    func.avg(things.c.n, type_=Numeric(10, 2))
)  # a numeric result: through SQLAlchemy, whose processor needs the type code
_TEXT = text("SELECT CAST(:a AS integer) + 1, 'x'")


def _add_once(db: Any) -> Any:
    return (postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert)(
        things
    ).on_conflict_do_nothing()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def through_sqlalchemy(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_rows_counts_and_types_are_sqlalchemys(engine: AsyncEngine, through_sqlalchemy: list[str]) -> None:
    async with Session(engine) as session, session.begin():
        before = len(through_sqlalchemy)
        assert (await execute(session, _COUNT)).scalar() == 0  # the first statement begins the transaction
        assert (await execute(session, _ADD, {"id": "x", "n": 1, "body": BODY, "at": AT})).rowcount == 1
        assert (await execute(session, _ADD, {"id": "y", "n": 5, "body": [], "at": AT})).rowcount == 1
        found = (await execute(session, _BY_ID, {"id": "x"})).first()
        expected = (await session.execute(_BY_ID, {"id": "x"})).one()
        assert found == tuple(expected) == (BODY, AT.astimezone(UTC), 1)
        assert found is not None and found.at.tzinfo == UTC and found.n == 1  # by name too, as SQLAlchemy's rows
        assert (await execute(session, _BY_ID, {"id": "none"})).first() is None
        assert (await execute(session, _BUMP, {"least": 2})).rowcount == 1
        assert (await execute(session, _add_once(session), {"id": "x", "n": 9, "body": {}, "at": AT})).rowcount == 0
        assert (await execute(session, _IN, {"ids": ["y", "x", "z"]})).scalars() == ["x", "y"]
        assert (await execute(session, _IN_LIST, {"ids": ["y", "x", "z"]})).scalars() == ["x", "y"]
        assert (await execute(session, _IN_LIST, {"ids": []})).scalars() == []
        assert (await execute(session, _TEXT, {"a": 1})).first() == (2, "x")  # text: values as the driver gives
        assert (await execute(session, _COUNT_IN, {"ids": ["x", "q"]})).scalar() == 1
        assert (await execute(session, _MEAN)).scalar() == (await session.execute(_MEAN)).scalar() == 3.5
        direct = through_sqlalchemy[before:]
    if (
        engine.dialect.name == "postgresql"
    ):  # only the expanding IN (its SQL depends on the list) and the check went through
        assert len(direct) == 4  # and the mean, twice
    else:
        assert len(direct) == 16  # every statement, and the BEGIN
    async with Session(engine) as session:
        assert [tuple(r) for r in await session.execute(select(things.c.id, things.c.n).order_by("id"))] == [
            ("x", 1),
            ("y", 6),
        ]


async def test_it_is_the_callers_transaction(engine: AsyncEngine) -> None:
    async with Session(engine) as session, session.begin():
        await execute(session, _COUNT)
        await execute(session, _ADD, {"id": "x", "n": 1, "body": {}, "at": AT})
        await session.rollback()
    async with Session(engine) as session, session.begin():
        assert (await execute(session, _COUNT)).scalar() == 0
        # the transaction's first statement begins it on the driver, as SQLAlchemy's dialect would: rolled back too
        await execute(session, _ADD, {"id": "y", "n": 1, "body": {}, "at": AT})
        await session.rollback()
    async with Session(engine) as session:
        assert (await session.execute(_COUNT)).scalar() == 0


async def _in_one_transaction(engine: AsyncEngine, *rows: dict[str, Any] | list[dict[str, Any]]) -> None:
    async with Session(engine) as session, session.begin():
        await execute(session, _COUNT)
        for row in rows:
            await execute(session, _ADD, row)


async def test_errors_are_sqlalchemys_and_undo_the_transaction(engine: AsyncEngine) -> None:
    x, y = {"id": "x", "n": 1, "body": {}, "at": AT}, {"id": "y", "n": 1, "body": {}, "at": AT}
    with pytest.raises(IntegrityError):
        await _in_one_transaction(engine, x, y, {**x, "n": 2})
    naive = {"id": "z", "n": 1, "body": {}, "at": AT.replace(tzinfo=None)}
    with pytest.raises(StatementError, match="time zone"):  # the column type's own check still applies
        await _in_one_transaction(engine, x, naive)
    async with Session(engine) as session:
        assert (await session.execute(_COUNT)).scalar() == 0


async def _write_after_losing_the_connection(engine: AsyncEngine) -> None:
    async with Session(engine) as session, session.begin():
        pid = (await execute(session, text("SELECT pg_backend_pid()"))).scalar()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # Once the driver has read the server's goodbye. (Caught in the middle of reading it, asyncpg says
        # "another operation is in progress", an InternalError, through SQLAlchemy's own execution as well.)
        await asyncio.sleep(0.3)
        await execute(session, _ADD, {"id": "x", "n": 1, "body": {}, "at": AT})


async def test_a_lost_connection_fails_as_the_consumers_expect_a_database_down(pg_url: str) -> None:
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        await _lost_connection_fails_and_the_pool_recovers(engine)
    finally:
        await engine.dispose()


async def _lost_connection_fails_and_the_pool_recovers(engine: AsyncEngine) -> None:
    # The consumer runtime holds a partition while the database is down on exactly these (runtime._DATABASE_DOWN),
    # rather than parking the message as poison.
    with pytest.raises((OperationalError, InterfaceError, ConnectionError)):
        await _write_after_losing_the_connection(engine)
    async with Session(engine) as session:  # and the pool gives a working connection afterwards
        assert (await session.execute(_COUNT)).scalar() == 0


async def test_a_begin_on_a_lost_connection_fails_as_sqlalchemys_would(pg_url: str) -> None:
    """The transaction's first statement begins it on the driver: a connection lost before then fails with
    SQLAlchemy's error, which the consumers read as the database down, not as a poison message."""
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        with pytest.raises((OperationalError, InterfaceError)):
            await _begin_after_losing_the_connection(engine)
        async with Session(engine) as session:
            assert (await execute(session, _COUNT)).scalar() == 0
    finally:
        await engine.dispose()


async def _begin_after_losing_the_connection(engine: AsyncEngine) -> None:
    async with Session(engine) as session, session.begin():
        raw = await (await session.connection()).get_raw_connection()  # checked out; nothing begun on it yet
        assert raw.dbapi_connection._transaction is None
        async with engine.connect() as other:
            pid = raw.driver_connection.get_server_pid()
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.3)
        await execute(session, _COUNT)


async def test_statements_prepared_before_a_table_changed_are_prepared_again(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(_ADD, {"id": "x", "n": 1, "body": {}, "at": AT})
    try:
        assert await _read_in_a_transaction(engine) == (1,)  # prepared on the pool's connection
        async with engine.begin() as conn:  # what a migration might do while the service runs
            await conn.execute(text("ALTER TABLE things ALTER COLUMN n TYPE bigint"))
        with pytest.raises(DBAPIError, match="cached statement plan is invalid"):
            await _read_in_a_transaction(engine)  # as SQLAlchemy's own execution fails once
        assert await _read_in_a_transaction(engine) == (1,)
    finally:
        await engine.dispose()


async def _read_in_a_transaction(engine: AsyncEngine) -> Any:
    async with Session(engine) as session, session.begin():
        await execute(session, _COUNT)
        return (await execute(session, _N_OF, {"id": "x"})).first()


async def test_a_list_of_parameter_sets_runs_the_statement_for_each(engine: AsyncEngine) -> None:
    rows = [{"id": f"r{i}", "n": i, "body": {"i": i}, "at": AT} for i in range(3)]
    async with Session(engine) as session, session.begin():
        await execute(session, _COUNT)
        await execute(session, _ADD, rows)
        await execute(session, _ADD, [])
        assert (await execute(session, _COUNT)).scalar() == 3
        assert (await execute(session, _BY_ID, {"id": "r2"})).mappings() == [
            {"body": {"i": 2}, "at": AT.astimezone(UTC), "n": 2}
        ]
    with pytest.raises(IntegrityError):
        await _in_one_transaction(engine, [{**rows[0], "id": "new"}, rows[1]])
    async with Session(engine) as session:
        assert (await session.execute(_COUNT)).scalar() == 3


async def test_a_connection_works_as_a_session_does(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await execute(conn, _ADD, {"id": "x", "n": 1, "body": BODY, "at": AT})
        assert (await execute(conn, _BY_ID, {"id": "x"})).first() == (BODY, AT.astimezone(UTC), 1)


async def test_a_connection_outside_a_transaction_commits_what_it_begins(engine: AsyncEngine) -> None:
    """SQLAlchemy begins it (autobegin), so its commit ends what was begun; a rollback undoes it."""
    async with engine.connect() as conn:
        await execute(conn, _ADD, {"id": "x", "n": 1, "body": {}, "at": AT})
        await conn.commit()
        await execute(conn, _ADD, {"id": "y", "n": 1, "body": {}, "at": AT})
        await conn.rollback()
    async with engine.connect() as conn:
        assert (await execute(conn, _COUNT)).scalar() == 1
