"""Fixtures for the shared package's tests: real PostgreSQL/SQLite databases and the embedded Kafka-wire broker."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import create_engine
from send_shared.telemetry import setup_logging

# The helper module sits next to this file; --import-mode=importlib does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from shared_testkit import create_schema


@pytest.fixture
def pg_url(postgres_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database for one test (dropped at the end of the session)."""
    return postgres_server.new_database("send_shared_t")


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url, pool_size=20)
    await create_schema(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def any_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh database of each kind the product runs on (PostgreSQL and SQLite), with the test schema."""
    engine = create_engine(database_url)
    await create_schema(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the service's logging (``setup_logging``) writes to stdout during one test; the root logger is put back
    afterwards."""
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("svc")
    try:
        yield out
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
