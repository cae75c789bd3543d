"""Async SQLAlchemy engines for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Insert,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from send_shared import direct


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp with its zone, on SQLite too. SQLite keeps a datetime's wall time and drops its offset,
    so every value is turned into UTC before it is written, and comes back marked UTC; a naive value is
    refused (there is no knowing which zone it meant)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a timestamp without a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def dialect_name(db: AsyncSession | AsyncConnection) -> str:
    return db.get_bind().dialect.name if isinstance(db, AsyncSession) else db.dialect.name


def is_unique_violation(error: BaseException) -> bool:
    """A write that met another row's unique key (PostgreSQL's 23505, SQLite's UNIQUE or PRIMARY KEY failure)."""
    if not isinstance(error, IntegrityError):
        return False
    driver_error = error.orig
    if getattr(driver_error, "sqlstate", None) == "23505":
        return True
    return getattr(driver_error, "sqlite_errorname", None) in {
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    }


def upsert_insert(db: AsyncSession | AsyncConnection) -> Any:
    """The dialect's ``insert`` (PostgreSQL or SQLite), the one that knows ``ON CONFLICT``."""
    return postgresql.insert if dialect_name(db) == "postgresql" else sqlite.insert


_Statement = TypeVar("_Statement")


class ByDialect(Generic[_Statement]):
    """A statement built once for each dialect from that dialect's ``insert`` (one that knows ``ON CONFLICT``), so
    a hot path executes it with parameters instead of building it again, and its cache key, on every call."""

    def __init__(self, build: Callable[[Any], _Statement]) -> None:
        self._built = {"postgresql": build(postgresql.insert), "sqlite": build(sqlite.insert)}

    def __call__(self, db: AsyncSession | AsyncConnection) -> _Statement:
        return self._built[dialect_name(db)]


@functools.cache
def insert_into(table: Table) -> Insert:
    """``insert(table)``, built once for each table (statements are kept compiled by identity: see direct)."""
    return insert(table)


@functools.cache
def unnest_insert(table: Table, columns: tuple[str, ...], prefix: str) -> postgresql.Insert:
    """PostgreSQL: rows of ``table`` from one array per column (bound as ``<prefix>_<column>``, see
    ``unnest_arrays``), inserted in the order given. The statement is the same whatever the number of rows, so it is
    compiled and prepared once, and it can be one part of a data-modifying WITH that writes several tables in one
    round trip. A JSON column's values come as JSON text: a list would be read as one more dimension of the
    array."""
    json = _json_columns(table, columns)
    arrays = [
        cast(bindparam(f"{prefix}_{name}", type_=ARRAY(Text, dimensions=1)), ARRAY(table.c[name].type))
        if name in json
        else bindparam(f"{prefix}_{name}", type_=ARRAY(table.c[name].type, dimensions=1))
        for name in columns
    ]
    given = func.unnest(*arrays).table_valued(*columns, with_ordinality="ordinal").render_derived(prefix)
    in_order = select(*(given.c[name] for name in columns)).order_by(given.c.ordinal)
    return postgresql.insert(table).from_select(list(columns), in_order)


def unnest_arrays(
    table: Table, columns: tuple[str, ...], prefix: str, rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """The parameters of ``unnest_insert(table, columns, prefix)`` for ``rows``."""
    json = _json_columns(table, columns)
    return {
        f"{prefix}_{name}": [orjson.dumps(row[name]).decode() for row in rows]
        if name in json
        else [row[name] for row in rows]
        for name in columns
    }


@functools.cache
def _json_columns(table: Table, columns: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name in columns if isinstance(table.c[name].type, JSON))


@functools.cache
def json_rows_insert(table: Table, name: str) -> postgresql.Insert:
    """PostgreSQL: rows of ``table`` given as one JSON array of objects keyed by column (bound as ``name``; see
    ``json_rows``), a column an object leaves out being NULL. One parameter whatever the rows, made by orjson
    in one call, where arrays of each column cost the driver a check of every element; for tables whose values
    JSON holds (no bytes). Like ``unnest_insert``, it can be one part of a data-modifying WITH."""
    rows = func.json_populate_recordset(
        literal_column(f"NULL::{table.fullname}"), cast(bindparam(name, type_=Text), JSON)
    ).table_valued(*(column.name for column in table.columns))
    return postgresql.insert(table).from_select(
        [column.name for column in table.columns], select(*(rows.c[column.name] for column in table.columns))
    )


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """The parameter of ``json_rows_insert``: timestamps with their offset, dates as ISO dates."""
    return orjson.dumps(rows).decode()


# Below this many rows a prepared INSERT wins: asyncpg's COPY first describes the table, one more round trip.
_COPY_FROM_ROWS = 50


async def bulk_insert(db: AsyncSession | AsyncConnection, table: Table, records: Sequence[tuple[Any, ...]]) -> None:
    """Inserts rows that cannot conflict, each a tuple in the table's column order: PostgreSQL's COPY
    for many rows (several times faster than a multi-row INSERT for thousands of rows), an executemany
    INSERT for a few, and on SQLite. Runs in the caller's transaction."""
    if not records:
        return
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    columns = [c.name for c in table.columns]
    if conn.dialect.name != "postgresql" or len(records) < _COPY_FROM_ROWS:
        rows = [dict(zip(columns, record, strict=True)) for record in records]
        await direct.execute(conn, insert_into(table), rows)
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    # A connection building tables beside the live ones (schema_translate_map) copies into them too.
    options = conn.sync_connection.get_execution_options() if conn.sync_connection is not None else {}
    schema = (options.get("schema_translate_map") or {}).get(table.schema, table.schema)
    await driver.copy_records_to_table(table.name, records=records, columns=columns, schema_name=schema)


class InList(ColumnElement[bool]):
    """``column IN`` the list given as the parameter ``name``: on PostgreSQL ``column = ANY(:name)``, one statement
    whatever the list's length (so prepared once, and run on asyncpg by ``send_shared.direct``); elsewhere
    SQLAlchemy's expanding ``IN``, whose SQL is made afresh for each length."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name

    @property
    def _from_objects(self) -> list[Any]:  # the column's table belongs in FROM, as with column.in_()
        return list(self.column._from_objects)


@compiles(InList)
def _expanding_in(element: InList, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw))


@compiles(InList, "postgresql")
def _equals_any(element: InList, compiler: Any, **kw: Any) -> str:
    array = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(array, **kw)})"


def ensure_sqlite_folder(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(database_url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An engine for ``database_url``. On PostgreSQL its pool opens connections as they are needed, up to
    ``pool_size``, and keeps every one: no overflow beyond the size, because an overflow connection is closed when
    it comes back, so a service near its peak opened and closed a connection every few requests (a forked backend
    with cold caches, statements prepared again, the driver parsing its arguments: figure 3 saw 40 sessions in
    2,000 referrals and 3% of the referrals process in ``asyncpg.connect``). The most recently returned connection
    goes out first, so the few a steady load needs stay warm and the rest wait idle."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_folder(database_url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_use_lifo=True)
    event.listen(engine.sync_engine.pool, "checkout", _drop_if_closed)
    return engine


def _drop_if_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection the server closed (a restart, an idle timeout) is replaced at checkout.

    Instead of ``pool_pre_ping``: the asyncpg dialect's ping is BEGIN, a query and ROLLBACK, three
    round trips on every checkout, a fifth of the statements of a request. asyncpg marks a
    connection closed as soon as its socket ends, so asking it costs nothing."""
    if record.driver_connection is None or record.driver_connection.is_closed():
        raise DisconnectionError("connection closed by the server")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (so BEGIN IMMEDIATE below applies).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that reads then writes can fail with
    # SQLITE_BUSY when another writer got in between, which busy_timeout cannot wait out.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# What a repository runs its statements on: a unit of work's connection, or the consumer runtime's session.
Db = AsyncSession | AsyncConnection


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A service's table metadata, with constraint names stable across PostgreSQL and SQLite (for Alembic)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def as_utc(value: datetime) -> datetime:
    """SQLite returns timestamps without their zone; every timestamp we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
