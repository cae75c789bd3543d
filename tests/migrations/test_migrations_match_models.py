"""Each service's Alembic migrations build exactly the tables its models declare, on both databases."""

from __future__ import annotations

import asyncio
import importlib
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text
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


def _upgrade(service: str, database_url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    package = importlib.import_module(service)
    config = Config()
    config.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)


@pytest.mark.parametrize(("service", "before"), [("referrals", "0001"), ("waitlists", "0002")])
async def test_the_old_outbox_moves_into_the_event_store(service: str, before: str, database_url: str) -> None:
    """Rows the single outbox table held before the event store existed are kept, in order; unsent ones
    stay queued."""
    await asyncio.to_thread(_upgrade, service, database_url, before)
    engine = create_engine(database_url)
    rows = [
        ("e-1", "t", "k1", 3, '{"ce_id": "e-1"}', b"{}", "2026-11-01T10:00:00+00:00", "2026-11-01T10:00:01+00:00"),
        ("e-2", "t", "k2", 5, '{"ce_id": "e-2"}', b"{}", "2026-11-01T10:00:02+00:00", None),
    ]
    try:
        async with engine.begin() as conn:
            for row in rows:
                await conn.execute(
                    text(
                        "INSERT INTO outbox (event_id, topic, message_key, shard, headers, payload, created_at, sent_at) "
                        "VALUES (:e, :t, :k, :s, :h, :p, :c, :sent)"
                    ),
                    dict(zip(["e", "t", "k", "s", "h", "p", "c", "sent"], row, strict=True))
                    | {"c": datetime.fromisoformat(row[6]), "sent": datetime.fromisoformat(row[7]) if row[7] else None},
                )
        await asyncio.to_thread(_upgrade, service, database_url, "head")
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT position, event_id FROM event_store ORDER BY position"))).all()
            queued = (await conn.execute(text("SELECT position, sent_at IS NULL FROM outbox ORDER BY position"))).all()
    finally:
        await engine.dispose()
    assert [event_id for _, event_id in stored] == ["e-1", "e-2"]
    assert [(position, bool(unsent)) for position, unsent in queued] == [(stored[0][0], False), (stored[1][0], True)]
