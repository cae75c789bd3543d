"""Hot statements run straight on asyncpg, in the session's transaction.

Executing a Core statement through SQLAlchemy costs about twice the CPU of running the same prepared statement on
the driver (the execution context, parameter and result handling, the greenlet hop): about 90 µs a statement on this
machine, and a referral takes a few dozen statements across the services. ``execute`` compiles a statement once per
dialect and set of parameter names, with SQLAlchemy's own compiler, bind processors (JSON, UTC timestamps) and
result processors, and then runs it on asyncpg's connection as SQLAlchemy would have. Errors come out as
SQLAlchemy's (``IntegrityError``, ``OperationalError``, ...), so callers catch what they always caught.

The driver's transaction is begun here when SQLAlchemy has not yet begun it (its dialect begins it lazily, before
its first statement, with the same call). SQLAlchemy runs the statement instead whenever the shortcut would not be
the same: on SQLite, on a connection outside a transaction or in autocommit, for tables built beside the live ones
(``schema_translate_map``), for statements whose SQL depends on the parameters (expanding ``IN`` lists; use
``db.InList``, one statement on PostgreSQL), that need Python-side column defaults, or whose results are numeric.
Statements are kept compiled by identity, so pass ones built once (a module's constants). Written by hand: SQLAlchemy has no public API for running a compiled statement on the
driver, and asyncpg alone would mean a second copy of every statement and its types.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Numeric, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement, Executable

_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+|MERGE) (\d+)")


class Result:
    """What a statement gave back: its rows (named tuples, in the statement's column order, as SQLAlchemy's rows
    are) and the rows it touched."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def mappings(self) -> list[dict[str, Any]]:
        return [row._asdict() for row in self.rows]

    def first_mapping(self) -> dict[str, Any] | None:
        return self.rows[0]._asdict() if self.rows else None


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...]
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: Callable[[Iterable[Any]], Any]
    fixed: dict[str, Any]  # the values of bound parameters the caller does not give (``status == 'pending'``)


# Rows as SQLAlchemy's: by position or by column name (a type per statement, so untyped here).
_ROW_TYPE: Any = namedtuple


@functools.lru_cache(maxsize=512)
def _compile(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> _Compiled | None:
    clause: ClauseElement = statement  # type: ignore[assignment]  # every executable statement is a clause
    compiled: Any = clause.compile(dialect=dialect, column_keys=sorted(keys))
    if compiled.post_compile_params or compiled.literal_execute_params or compiled.insert_prefetch:
        return None  # the SQL would change with the parameters, or SQLAlchemy fills in defaults as it executes
    if compiled.update_prefetch or compiled.positiontup is None:
        return None
    processors = compiled._bind_processors  # the compiler's own bind processors, as execution uses them
    names = tuple(compiled.positiontup)
    if any(isinstance(entry.type, Numeric) for entry in compiled._result_columns):
        return None  # the dialect's numeric result processors need the column's type code, known as it executes
    results = tuple(entry.type._cached_result_processor(dialect, None) for entry in compiled._result_columns)
    row = _ROW_TYPE("Row", [entry.keyname for entry in compiled._result_columns], rename=True)
    fixed = {}
    for name in names:
        bind = compiled.binds[name]
        if name not in keys:
            if bind.callable is not None or (bind.value is None and bind.required):
                return None  # a value made as it executes, or one the caller must give: SQLAlchemy says which
            fixed[name] = bind.value
    return _Compiled(compiled.string, names, tuple(processors.get(name) for name in names), results, row._make,
                     fixed)  # fmt: skip


_DRIVER = "send_shared.direct.driver"


async def _driver(db: AsyncSession | AsyncConnection) -> Any:
    """The asyncpg adapter of ``db``'s connection, in SQLAlchemy's transaction (its driver's begun or not yet); None
    where SQLAlchemy must run the statement."""
    if isinstance(db, AsyncSession):
        transaction = db.sync_session.get_transaction()
        cached = db.info.get(_DRIVER)
        if transaction is not None and cached is not None and cached[0] is transaction:
            adapter = cached[1]
        else:  # the session's transaction begun, as its own execute would begin it
            adapter = await _adapter(await db.connection())
            db.info[_DRIVER] = (db.sync_session.get_transaction(), adapter)
    elif db.in_transaction():
        adapter = await _adapter(db)
    else:  # SQLAlchemy begins it (autobegin) and must know it did, to commit it
        return None
    return adapter


async def _begin(adapter: Any, dialect: Dialect) -> None:
    """The driver's transaction begun, as the dialect begins it lazily before its first statement; a failure comes
    out as SQLAlchemy's error (``OperationalError``, ``InterfaceError``), as it would from SQLAlchemy's BEGIN."""
    try:
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                await adapter._start_transaction()
    except Exception as error:
        raised = _as_sqlalchemy_error(adapter, dialect, "BEGIN", [], error)
        if raised is error:
            raise
        raise raised from error


async def _adapter(conn: AsyncConnection) -> Any:
    if conn.dialect.driver != "asyncpg":
        return None
    if conn.sync_connection is not None and conn.sync_connection.get_execution_options().get("schema_translate_map"):
        return None
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        # Checked out already: its pooled connection is at hand without the greenlet hop get_raw_connection makes
        # (about 4% of the waitlists consumer's CPU, once a statement).
        return sync.connection.dbapi_connection
    return (await conn.get_raw_connection()).dbapi_connection


async def execute(
    db: AsyncSession | AsyncConnection,
    statement: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> Result:
    """``db.execute(statement, params)``, on the driver when it is the same (see the module's note). ``statement``
    is built once (a module's constant): compiled statements are kept by identity. A list of parameter sets, all
    with the same names, runs the statement for each (no rows come back)."""
    many = list(params) if isinstance(params, Sequence) else None
    if many == []:
        return Result([], 0)
    first: Mapping[str, Any] = many[0] if many else params or {}  # type: ignore[assignment]
    adapter = await _driver(db)
    dialect = db.get_bind().dialect if isinstance(db, AsyncSession) else db.dialect
    compiled = _compile(statement, dialect, frozenset(first)) if adapter is not None else None
    if compiled is not None and adapter._transaction is None:
        await _begin(adapter, dialect)
    if compiled is None or adapter._transaction is None:  # autocommit begins none: SQLAlchemy runs it
        return await _through_sqlalchemy(db, statement, many if many is not None else first)
    args = [_arguments(compiled, one) for one in (many if many is not None else [first])]
    try:
        async with adapter._execute_mutex:  # as the dialect's cursor does
            # The dialect's own cache of prepared statements, shared with SQLAlchemy's executions of the same SQL.
            prepared, _attributes = await adapter._prepare(compiled.sql, dialect._invalidate_schema_cache_asof)  # type: ignore[attr-defined]
            if many is not None:
                await prepared.executemany(args)
                return Result([], -1)
            records = await prepared.fetch(*args[0])
            status = prepared.get_statusmsg()
    except Exception as error:  # turned into SQLAlchemy's error, as SQLAlchemy does
        raised = _as_sqlalchemy_error(adapter, dialect, compiled.sql, args, error)
        if raised is error:
            raise
        raise raised from error
    if not compiled.results:  # text without its columns declared: the driver's values as they are
        return _result([tuple(record) for record in records], status)
    rows = [
        compiled.row(
            value if result is None else result(value) for value, result in zip(record, compiled.results, strict=True)
        )
        for record in records
    ]
    return _result(rows, status)


def _result(rows: list[Any], status: str | None) -> Result:
    found = _ROWCOUNT.match(status or "")
    return Result(rows, int(found.group(1)) if found else -1)


def _arguments(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    try:  # a type's own check (a timestamp without its zone, say) fails as it does in SQLAlchemy
        fixed = compiled.fixed
        return [value if bind is None else bind(value)
                for value, bind in zip([params[name] if name in params else fixed[name] for name in compiled.names],
                                       compiled.binds, strict=True)]  # fmt: skip
    except exc.StatementError:
        raise
    except Exception as error:  # what a bind processor raised
        raise exc.StatementError(str(error), compiled.sql, dict(params), error) from error


async def _through_sqlalchemy(
    db: AsyncSession | AsyncConnection, statement: Executable, params: Mapping[str, Any] | list[Mapping[str, Any]]
) -> Result:
    result: Any = await db.execute(statement, params if isinstance(params, list) else dict(params))
    rows = list(result) if result.returns_rows else []
    return Result(rows, result.rowcount if not result.returns_rows or result.rowcount >= 0 else len(rows))


def _as_sqlalchemy_error(adapter: Any, dialect: Any, sql: str, args: Sequence[Any], error: Exception) -> Exception:
    try:
        adapter._handle_exception(error)  # raises the driver error as the dialect's DB-API error
    except Exception as translated:  # noqa: BLE001 - whatever the dialect made of it
        if not isinstance(translated, adapter.dbapi.Error):
            return translated  # not the driver's (a socket's ConnectionError, say): raised as it is, as SQLAlchemy does
        if isinstance(translated, adapter.dbapi.InvalidCachedStatementError | adapter.dbapi.InternalServerError):
            dialect._invalidate_schema_cache()  # a table changed under its prepared statements: prepare them again
        wrapped: Exception = exc.DBAPIError.instance(sql, list(args), translated, adapter.dbapi.Error)
        return wrapped
    return error
