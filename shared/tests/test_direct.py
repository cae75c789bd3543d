"""``send_shared.direct.execute`` gives what SQLAlchemy's ``execute`` gives, in the same transaction, on PostgreSQL
(straight on asyncpg once the transaction has begun) and SQLite (through SQLAlchemy): the same rows with the same
types, the same counts, the same errors; and on PostgreSQL it does not go through SQLAlchemy's execution."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
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
from sqlalchemy.exc import IntegrityError, StatementError
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
        assert (await execute(session, _COUNT)).scalar() == 0  # the first statement begins the transaction
        before = len(through_sqlalchemy)
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
        direct = through_sqlalchemy[before:]
    if (
        engine.dialect.name == "postgresql"
    ):  # only the expanding IN (its SQL depends on the list) and the check went through
        assert len(direct) == 2
    else:
        assert len(direct) == 11
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
        # the transaction's first statement goes through SQLAlchemy, which begins it: it is rolled back too
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
