"""Pytest plugin with the real infrastructure every test suite uses (``-p send_devkit.testing``).

Each fixture chooses, in order:
1. an explicit address: ``KAFKA_BOOTSTRAP_SERVERS`` / ``TEST_DATABASE_URL``;
2. testcontainers (Kafka, PostgreSQL) when a Docker engine answers a short ping;
3. local fallbacks: the embedded Tansu broker, and the PostgreSQL at 127.0.0.1:5432
   with a fresh database for the test session, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from send_devkit.broker import EmbeddedBroker

LOCAL_POSTGRES = os.environ.get("LOCAL_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def docker_engine_answers(timeout: float = 2.0) -> bool:
    """Ping the Docker engine with a short timeout so tests never hang where there is none."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means: no engine here
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        yield explicit
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_databases(admin_url: str, names: list[str]) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class PostgresServer:
    """Hands out fresh databases on one server; drops them all at the end of the session."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def new_database(self, prefix: str = "t") -> str:
        from sqlalchemy.engine import make_url

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_database(self.admin_url, name))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        asyncio.run(_drop_databases(self.admin_url, self.created))
        self.created.clear()


# Servers whose databases are dropped when the session finishes: after the last test, outside any test's
# timeout (each drop makes PostgreSQL checkpoint, so a few hundred take minutes on a busy machine).
_to_drop: list[PostgresServer] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _to_drop:
        _to_drop.pop().drop_all()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        server = PostgresServer(explicit)
        yield server
        _to_drop.append(server)
        return
    if docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15.10", driver="asyncpg") as pg:
            server = PostgresServer(pg.get_connection_url())
            yield server
        return
    server = PostgresServer(LOCAL_POSTGRES)
    yield server
    _to_drop.append(server)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh PostgreSQL database for this test session."""
    return postgres_server.new_database("send_test")


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A fresh, empty database of each kind the product runs on."""
    if request.param == "postgresql":
        return postgres_server.new_database("send_t")
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
