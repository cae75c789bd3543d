"""Each service's Alembic migrations build exactly the tables its models declare, on both databases."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime
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


async def test_the_consent_a_referral_was_submitted_with_becomes_its_first_consent_record(database_url: str) -> None:
    """Revision 0003 (issue #17) moves the consent columns of referral_people into referral_consents: version 1,
    given, by whom and when it was given, scoped to the referral's own service, the old free-text scope kept as
    its note; the columns are dropped and the child's details stay."""
    await asyncio.to_thread(_upgrade, "referrals", database_url, "0002")
    engine = create_engine(database_url)
    referral = {
        "id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
        "child_ref": "c" * 32,
        "referrer_org_id": "org-riverside-primary",
        "service_id": "svc-camhs-core",
        "receiving_org_id": "org-northshire-camhs",
        "urgency": "routine",
        "primary_need": "SEMH",
        "is_ehc": False,
        "status": "accepted",
        "version": 2,
        "referred_at": datetime.fromisoformat("2026-01-06T09:00:00+00:00"),
        "status_at": datetime.fromisoformat("2026-01-07T09:00:00+00:00"),
        "parallel_referral_ids": "[]",
        "updated_at": datetime.fromisoformat("2026-01-07T09:00:01+00:00"),
    }
    person = {
        "referral_id": referral["id"],
        "given_name": "Sam",
        "family_name": "Taylor",
        "date_of_birth": datetime.fromisoformat("2015-04-12").date(),
        "nhs_number": "9434765919",
        "reason": "Persistent anxiety.",
        "consent_given_by": "carer",
        "consent_given_at": datetime.fromisoformat("2026-01-05T10:00:00+00:00"),
        "consent_scope": "Referral to CAMHS only",
    }
    try:
        async with engine.begin() as conn:
            json_cast = (
                "CAST(:parallel_referral_ids AS JSON)"
                if conn.dialect.name == "postgresql"
                else ":parallel_referral_ids"
            )
            columns = [c for c in referral if c != "parallel_referral_ids"]
            await conn.execute(
                text(
                    f"INSERT INTO referrals ({', '.join(columns)}, parallel_referral_ids) "
                    f"VALUES ({', '.join(':' + c for c in columns)}, {json_cast})"
                ),
                referral,
            )
            await conn.execute(
                text(
                    f"INSERT INTO referral_people ({', '.join(person)}) VALUES ({', '.join(':' + c for c in person)})"
                ),
                person,
            )
        await asyncio.to_thread(_upgrade, "referrals", database_url, "head")
        async with engine.connect() as conn:
            consents = (await conn.execute(text("SELECT * FROM referral_consents"))).mappings().all()
            people = (await conn.execute(text("SELECT * FROM referral_people"))).mappings().all()
    finally:
        await engine.dispose()
    [consent] = consents
    scope = consent["scope_service_ids"]
    assert (json.loads(scope) if isinstance(scope, str) else scope) == ["svc-camhs-core"]
    others = consent["scope_organisation_ids"]
    assert (json.loads(others) if isinstance(others, str) else others) == []
    given_at = consent["occurred_at"]
    given_at = datetime.fromisoformat(given_at) if isinstance(given_at, str) else given_at
    assert given_at.replace(tzinfo=given_at.tzinfo or UTC) == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert {k: consent[k] for k in ("referral_id", "consent_version", "consent_status", "given_by", "note",
                                    "recorded_by_org_id", "recorded_via")} == {
        "referral_id": referral["id"], "consent_version": 1, "consent_status": "given", "given_by": "carer",
        "note": "Referral to CAMHS only", "recorded_by_org_id": "org-riverside-primary", "recorded_via": "api",
    }  # fmt: skip
    assert len(consent["event_id"]) <= 36 and consent["event_id"].startswith("c1-")
    [kept] = people
    assert (kept["given_name"], kept["nhs_number"], kept["reason"]) == ("Sam", "9434765919", "Persistent anxiety.")
    assert not {"consent_given_by", "consent_given_at", "consent_scope"} & set(kept)
