"""Each service's Alembic migrations build exactly the tables its models declare, on both databases."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from send_shared.db import create_engine
from send_shared.service import run_migrations

SERVICES = ["referrals", "waitlists", "notifications"]


def _diff(connection: Connection, metadata: MetaData) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(service: str, database_url: str) -> None:
    package = importlib.import_module(service)
    await asyncio.to_thread(run_migrations, Path(package.__file__).parent / "migrations", database_url)
    metadata = importlib.import_module(f"{service}.adapters.orm").metadata
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_diff, metadata)
    finally:
        await engine.dispose()
    assert differences == [], f"{service}: models and migrations differ; add a migration"
