"""Process wiring every service shares: database engine, one Kafka producer, supervised background
workers (outbox relay, consumer groups), the FastAPI lifespan, migrations and the ``serve`` loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from send_shared.consumer.runtime import BeforeCommit, ConsumerRuntime, Handler
from send_shared.db import create_engine, ensure_sqlite_folder, session_factory
from send_shared.events.topics import Topics
from send_shared.inbox import Inbox
from send_shared.kafka import broker_answers, ensure_topics, new_producer
from send_shared.outbox.relay import OutboxRelay
from send_shared.settings import ServiceSettings
from send_shared.web.limits import BodySizeLimit
from send_shared.web.ops import install_metrics, ops_router
from send_shared.web.problems import install_problem_handlers

log = logging.getLogger(__name__)
Worker = Callable[[asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    topics: Sequence[str]
    handler: Handler
    inbox_table: Table
    before_commit: BeforeCommit | None = None


@dataclass
class ServiceRuntime:
    """Owns the process-wide resources of one service."""

    settings: ServiceSettings
    outbox_table: Table | None = None
    consumers: Sequence[ConsumerSpec] = ()
    owned_topics: Sequence[str] = ()
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    workers: list[tuple[str, Worker]] = field(default_factory=list)
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    producer: AIOKafkaProducer | None = field(init=False, default=None)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _producer_ready: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.settings.database_url, pool_size=self.settings.db_pool_size)
        self.sessions = session_factory(self.engine)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        for step in self.startup:
            await step()
        self._stop.clear()
        self._spawn("kafka-producer", self._keep_producer)
        if self.settings.run_workers:
            if self.outbox_table is not None:
                self._spawn("outbox-relay", self._run_relay)
            for spec in self.consumers:
                self._spawn(f"consumer-{spec.group_id}", self._consumer_worker(spec))
            for name, worker in self.workers:
                self._spawn(name, worker)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def _spawn(self, name: str, worker: Worker) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(name, worker), name=name))

    async def _supervise(self, name: str, worker: Worker) -> None:
        """Restart a crashed worker with backoff; a broker outage never takes the API down."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                await worker(self._stop)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker crashed; restarting", extra={"worker": name, "retry_in_s": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 30.0)

    # --- workers ---------------------------------------------------------------------------------

    async def _keep_producer(self, stop: asyncio.Event) -> None:
        producer = new_producer(self.settings.kafka_bootstrap_servers, client_id=self.settings.service_name)
        await producer.start()
        try:
            await self._ensure_topics()
            self.producer = producer
            self._producer_ready.set()
            await stop.wait()
        finally:
            self._producer_ready.clear()
            self.producer = None
            await producer.stop()

    async def _ensure_topics(self) -> None:
        s = self.settings
        topics = dict.fromkeys(self.owned_topics, s.kafka_topic_partitions)
        for spec in self.consumers:
            topics.update(dict.fromkeys(spec.topics, s.kafka_topic_partitions))
            topics[Topics.dead_letter(spec.group_id)] = 1
            topics[Topics.replay(spec.group_id)] = 1
        await ensure_topics(s.kafka_bootstrap_servers, topics, replication_factor=s.kafka_replication_factor)

    async def _ready_producer(self) -> AIOKafkaProducer:
        await self._producer_ready.wait()
        assert self.producer is not None
        return self.producer

    async def _run_relay(self, stop: asyncio.Event) -> None:
        assert self.outbox_table is not None
        s = self.settings
        relay = OutboxRelay(
            self.engine,
            self.outbox_table,
            await self._ready_producer(),
            batch_size=s.outbox_batch_size,
            poll_interval=s.outbox_poll_interval_ms / 1000,
            retention=timedelta(days=s.outbox_retention_days),
        )
        await relay.run(stop)

    def _consumer_worker(self, spec: ConsumerSpec) -> Worker:
        async def run(stop: asyncio.Event) -> None:
            s = self.settings
            runtime = ConsumerRuntime(
                bootstrap_servers=s.kafka_bootstrap_servers,
                group_id=spec.group_id,
                topics=spec.topics,
                handler=spec.handler,
                before_commit=spec.before_commit,
                engine=self.engine,
                inbox=Inbox(spec.inbox_table, spec.group_id),
                producer=await self._ready_producer(),
                max_attempts=s.consumer_max_attempts,
                backoff_initial=s.consumer_backoff_initial_ms / 1000,
                backoff_max=s.consumer_backoff_max_ms / 1000,
                inbox_retention=timedelta(days=s.inbox_retention_days),
            )
            await runtime.run(stop)

        return run

    # --- readiness -------------------------------------------------------------------------------

    async def database_answers(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def broker_answers(self) -> bool:
        return self.producer is not None and await broker_answers(self.producer)


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    version: str = "1.0.0",
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app with the shared error handling, operational endpoints, metrics and tracing."""
    app = FastAPI(title=title, description=description, version=version, lifespan=runtime.lifespan)
    install_problem_handlers(app)
    install_metrics(app)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_request_bytes, per_path=body_limits)
    app.include_router(ops_router({"database": runtime.database_answers, "broker": runtime.broker_answers}))
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    return app


def run_migrations(script_location: Path, database_url: str) -> None:
    """Bring the database to the newest Alembic revision (creates a SQLite file's folder first)."""
    from alembic import command
    from alembic.config import Config

    ensure_sqlite_folder(database_url)
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def service_cli(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[Any], FastAPI],
    migrations: Path,
    extra: dict[str, tuple[str, Callable[[Any], None]]] | None = None,
) -> None:
    """``<service> migrate`` applies migrations; ``<service> serve`` runs the API and its workers;
    ``extra`` adds a service's own commands (name -> (help, function of the settings))."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("serve", help="run the HTTP API with the outbox relay and consumers")
    for name, (help_text, _run) in (extra or {}).items():
        commands.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command == "migrate":
        run_migrations(migrations, settings.database_url)
    elif args.command == "serve":
        serve(app_factory(settings), settings)
    else:
        (extra or {})[args.command][1](settings)
