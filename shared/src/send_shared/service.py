"""Process wiring every service shares: database engine, one Kafka producer, supervised background
workers (outbox relay, broker watch, consumer groups), the FastAPI lifespan, migrations and the ``serve``
loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from send_shared.auth import TokenVerifier
from send_shared.consumer.positions import ConsumerPositions
from send_shared.consumer.runtime import AfterCommit, BeforeBatch, BeforeCommit, ConsumerRuntime, Handler
from send_shared.db import create_engine, ensure_sqlite_folder, session_factory
from send_shared.events.topics import Topics
from send_shared.health import Health, detected
from send_shared.inbox import Inbox
from send_shared.kafka import TopicSpec, broker_answers, ensure_topics, recreate_topics
from send_shared.kafka_link import ProducerLink
from send_shared.log_probe import LogProbe
from send_shared.metrics import WORKER_RESTARTS
from send_shared.outbox.healer import BrokerUnavailable, OutboxHealer
from send_shared.outbox.relay import OutboxRelay
from send_shared.outbox.table import OutboxTables
from send_shared.settings import ServiceSettings
from send_shared.waiting import woken_or_stopped
from send_shared.web.access_log import AccessLog
from send_shared.web.docs import install_api_docs
from send_shared.web.headers import SecurityHeaders
from send_shared.web.limits import BodySizeLimit
from send_shared.web.ops import install_metrics, ops_router
from send_shared.web.problems import document_problems, install_problem_handlers

log = logging.getLogger(__name__)
Worker = Callable[[asyncio.Event], Awaitable[None]]
_CRASHES_BEFORE_UNREADY = 3


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    topics: Sequence[str]
    handler: Handler
    inbox_table: Table
    positions_table: Table
    before_commit: BeforeCommit | None = None
    after_commit: AfterCommit | None = None
    before_batch: BeforeBatch | None = None
    # How long the broker may hold an empty fetch: short where latency matters, long for rare messages.
    fetch_max_wait_ms: int = 25


def durable_topic(name: str, partitions: int, settings: ServiceSettings) -> TopicSpec:
    """Topics the system depends on keep every record: the event stores can refill them, but a consumer
    that starts later reads history from them, and nothing may expire before every group has read it.
    Acknowledged writes survive a broker's loss (acks=all with ``min.insync.replicas``), and a replica
    that missed writes never becomes leader."""
    return TopicSpec(
        name,
        partitions,
        {
            "cleanup.policy": "delete",
            "retention.ms": "-1",
            "retention.bytes": "-1",
            "min.insync.replicas": str(settings.kafka_min_insync_replicas),
            "unclean.leader.election.enable": "false",
        },
    )


@dataclass
class _WorkerState:
    healthy_after: float  # a worker that ran this long since its last restart is no longer failing
    started_at: float = field(default_factory=time.monotonic)
    crashes_in_a_row: int = 0
    last_error: str | None = None

    def status(self) -> str | None:
        if self.crashes_in_a_row < _CRASHES_BEFORE_UNREADY:
            return None
        if time.monotonic() - self.started_at > self.healthy_after:
            return None
        return f"failing: crashed {self.crashes_in_a_row} times in a row, last with {self.last_error}"


@dataclass
class ServiceRuntime:
    """Owns the process-wide resources of one service."""

    settings: ServiceSettings
    outbox: OutboxTables | None = None
    consumers: Sequence[ConsumerSpec] = ()
    owned_topics: Sequence[str] = ()
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    workers: list[tuple[str, Worker]] = field(default_factory=list)
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    link: ProducerLink = field(init=False)
    health: Health = field(init=False, default_factory=Health)
    relay: OutboxRelay | None = field(init=False, default=None)
    healer: OutboxHealer | None = field(init=False, default=None)
    _probe: LogProbe = field(init=False)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _workers: dict[str, _WorkerState] = field(init=False, default_factory=dict)
    _consumer_runtimes: list[ConsumerRuntime] = field(init=False, default_factory=list)
    # Set when the broker stopped answering: until a look shows what it kept, the service is not ready.
    _unchecked_since: float | None = field(init=False, default=None)
    _look_now: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _look_failing_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        s = self.settings
        self.engine = create_engine(s.database_url, pool_size=s.db_pool_size)
        self.sessions = session_factory(self.engine)
        self.link = ProducerLink(s.kafka_bootstrap_servers, client_id=s.service_name, before_ready=self._ensure_topics)
        self._probe = LogProbe(s.kafka_bootstrap_servers, client_id=f"{s.service_name}-watch")

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        for step in self.startup:
            await step()
        self._stop.clear()
        self._spawn("kafka-producer", self.link.run)
        if not self.settings.run_workers:
            return
        if self.outbox is not None:
            self.relay, self.healer = self._outbox_workers(self.outbox)
            self._spawn("outbox-relay", self.relay.run)
            self.health.register("outbox", self.healer.status)
        self._spawn("broker-watch", self._watch_broker)
        self.health.register("broker state", self._broker_state)
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
        await self._probe.stop()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def _spawn(self, name: str, worker: Worker) -> None:
        state = self._workers[name] = _WorkerState(self.settings.stuck_after_seconds)
        self.health.register(f"worker {name}", state.status)
        self._tasks.append(asyncio.create_task(self._supervise(name, worker, state), name=name))

    async def _supervise(self, name: str, worker: Worker, state: _WorkerState) -> None:
        """Restart a crashed worker with backoff (each run gets fresh resources: workers build what they
        use inside the run); a broker outage never takes the API down. A worker that keeps crashing makes
        readiness fail until it has run for ``STUCK_AFTER_SECONDS`` without crashing."""
        delay = 0.5
        while not self._stop.is_set():
            state.started_at = time.monotonic()
            try:
                await worker(self._stop)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ran_for = time.monotonic() - state.started_at
                if ran_for > state.healthy_after:  # it had recovered: this is a new run of trouble
                    state.crashes_in_a_row, delay = 0, 0.5
                state.crashes_in_a_row += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                WORKER_RESTARTS.labels(name).inc()
                log.exception("worker crashed; restarting", extra={"worker": name, "retry_in_s": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 10.0)

    # --- topics and the broker's state -------------------------------------------------------------

    def topic_specs(self) -> list[TopicSpec]:
        s = self.settings
        specs = {name: durable_topic(name, s.kafka_topic_partitions, s) for name in self.owned_topics}
        for spec in self.consumers:
            specs.update({name: durable_topic(name, s.kafka_topic_partitions, s) for name in spec.topics})
            for private in (Topics.dead_letter(spec.group_id), Topics.replay(spec.group_id)):
                specs[private] = durable_topic(private, 1, s)
        return list(specs.values())

    def _written_topic_specs(self) -> list[TopicSpec]:
        written = set(self.owned_topics)
        for spec in self.consumers:
            written |= {Topics.dead_letter(spec.group_id), Topics.replay(spec.group_id)}
        return [spec for spec in self.topic_specs() if spec.name in written]

    async def _ensure_topics(self) -> list[str]:
        s = self.settings
        return await ensure_topics(
            s.kafka_bootstrap_servers, self.topic_specs(), replication_factor=s.kafka_replication_factor
        )

    async def _recreate_topic(self, topic: str) -> None:
        s = self.settings
        spec = next((t for t in self.topic_specs() if t.name == topic), None)
        spec = spec or durable_topic(topic, s.kafka_topic_partitions, s)
        await recreate_topics(s.kafka_bootstrap_servers, [spec], replication_factor=s.kafka_replication_factor)
        self.link.reset("a topic was made afresh")

    def _outbox_workers(self, tables: OutboxTables) -> tuple[OutboxRelay, OutboxHealer]:
        s = self.settings
        lock = asyncio.Lock()
        healer = OutboxHealer(
            self.engine,
            tables,
            self._probe,
            lock=lock,
            stuck_after=s.stuck_after_seconds,
            recreate_topic=self._recreate_topic,
        )
        relay = OutboxRelay(
            self.engine,
            tables,
            self.link,
            batch_size=s.outbox_batch_size,
            poll_interval=s.outbox_poll_interval_ms / 1000,
            safety_poll=s.outbox_safety_poll_seconds,
            linger=s.outbox_linger_ms / 1000,
            retention=timedelta(days=s.outbox_retention_days),
            on_loss=healer.heal,
            lock=lock,
        )
        healer.wake_relay = relay.wake
        return relay, healer

    async def _watch_broker(self, stop: asyncio.Event) -> None:
        """Every few seconds (twice a second after the broker was unreachable): topics the broker lost are
        created again (and the producer replaced), and the healer checks that every partition still holds
        the newest record acknowledged to it."""
        await self.link.get()  # the topics exist once the producer is ready: none is missing before that
        while not stop.is_set():
            self._look_now.clear()
            try:
                if await self._look_at_broker():
                    self._unchecked_since = None
                self._look_failing_since = None
            except (KafkaError, OSError, BrokerUnavailable) as exc:
                log.warning("broker watch could not finish a look", extra={"error": repr(exc)})
                self._look_failing_since = self._look_failing_since or time.monotonic()
            interval = 0.5 if self._unchecked_since is not None else self.settings.broker_check_seconds
            await woken_or_stopped(self._look_now, stop, interval)

    async def _look_at_broker(self) -> bool:
        """One look; False when the broker did not answer."""
        topics = await self._probe.topics()
        if topics is None:
            self.broker_unreachable()
            return False
        # Only topics this service writes: one made again by a reader while its owner still writes to
        # the vanished one can serve what the broker took meanwhile (the owner makes it afresh instead).
        missing = [spec.name for spec in self._written_topic_specs() if spec.name not in topics]
        if missing:
            detected("topic_missing", "topics vanished from the broker; creating them again", topics=missing)
            for topic in sorted(set(missing) & set(self.owned_topics)):
                if self.healer is not None:  # its relay may have written to it while it was gone
                    await self.healer.remake(topic)
            s = self.settings
            await ensure_topics(
                s.kafka_bootstrap_servers, self._written_topic_specs(), replication_factor=s.kafka_replication_factor
            )
            self.link.reset("topics were created again")
        if self.healer is not None:
            await self.healer.check()
            await self.healer.refresh_queue_stats()
        return True

    def broker_unreachable(self) -> None:
        """The broker did not answer: what it holds is unchecked until the next look, which comes soon; the
        consumers check their logs before applying more."""
        if self._unchecked_since is None:
            self._unchecked_since = time.monotonic()
            for runtime in self._consumer_runtimes:
                runtime.broker_unreachable()
        self._look_now.set()

    def _broker_state(self) -> str | None:
        if self._unchecked_since is not None:
            return "the broker was unreachable: checking what it kept"
        failing = time.monotonic() - (self._look_failing_since or math.inf)
        if failing > 2 * self.settings.broker_check_seconds:  # one failed look is a blip, not a state
            return f"the broker's logs could not be checked for {failing:.0f} s (a partition does not answer)"
        return None

    def _consumer_worker(self, spec: ConsumerSpec) -> Worker:
        async def run(stop: asyncio.Event) -> None:
            s = self.settings
            runtime = ConsumerRuntime(
                bootstrap_servers=s.kafka_bootstrap_servers,
                group_id=spec.group_id,
                topics=spec.topics,
                handler=spec.handler,
                before_commit=spec.before_commit,
                before_batch=spec.before_batch,
                after_commit=spec.after_commit,
                engine=self.engine,
                inbox=Inbox(spec.inbox_table, spec.group_id),
                positions=ConsumerPositions(spec.positions_table, spec.group_id),
                producer=self.link,
                max_attempts=s.consumer_max_attempts,
                backoff_initial=s.consumer_backoff_initial_ms / 1000,
                backoff_max=s.consumer_backoff_max_ms / 1000,
                inbox_retention=timedelta(days=s.inbox_retention_days),
                watch_interval=s.broker_check_seconds,
                stuck_after=s.stuck_after_seconds,
                session_timeout_ms=s.kafka_session_timeout_ms,
                heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=spec.fetch_max_wait_ms,
                linger=s.consumer_linger_ms / 1000,
            )
            self.health.register(f"consumer {spec.group_id}", runtime.status)
            self._consumer_runtimes.append(runtime)
            try:
                await runtime.run(stop)
            finally:
                self._consumer_runtimes.remove(runtime)

        return run

    # --- readiness -------------------------------------------------------------------------------

    async def database_answers(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def broker_answers(self) -> bool:
        producer = self.link.current
        answers = producer is not None and await broker_answers(producer)
        if not answers and self.settings.run_workers:
            self.broker_unreachable()
        return answers


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    version: str = "1.0.0",
    body_limits: dict[str, int] | None = None,
    page_policies: dict[str, str] | None = None,
    untraced_paths: tuple[str, ...] = (),
) -> FastAPI:
    """A FastAPI app with the shared error handling, operational endpoints, metrics, tracing and security
    headers (``page_policies``: a content security policy for each path prefix that serves a page).
    ``untraced_paths``: path prefixes whose URLs carry a secret (a family link's token), never put in a span."""
    settings = runtime.settings
    docs = settings.serves_api_docs
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=runtime.lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=http_telemetry(untraced_paths),
    )
    if docs:
        install_api_docs(app)
    app.state.settings = settings
    app.state.verifier = TokenVerifier(settings)
    install_problem_handlers(app)
    document_problems(app)
    install_metrics(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes, per_path=body_limits)
    app.add_middleware(SecurityHeaders, pages=page_policies)  # outside the limits: a 413 gets them too
    if settings.access_log:
        app.add_middleware(AccessLog)  # outermost: its duration covers everything
    app.include_router(
        ops_router(
            {"database": runtime.database_answers, "broker": runtime.broker_answers},
            runtime.health.report,
            metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        )
    )
    return app


_UNTRACED_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def http_telemetry(secret_paths: tuple[str, ...]) -> TelemetryConfig:
    """FastAPI's own tracing: a server span per request, named by its route once the router has chosen it (the
    OpenTelemetry FastAPI instrumentation matched every route again to name it: a tenth of the CPU a submission
    spends in the framework). Not traced: the probes and metrics, and every path (below the root path) that starts
    with one of ``secret_paths``, whose URL carries a secret. Metrics are Prometheus's; log lines carry the trace."""

    def excluded(scope: MutableMapping[str, Any]) -> bool:
        path: str = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path in _UNTRACED_PROBES or path.startswith(secret_paths)

    return {"tracing": True, "metrics": False, "logs": False, "operation_spans": False, "exclude": excluded}


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
    extra: dict[str, tuple[str, Callable[[Any, list[str]], None]]] | None = None,
) -> None:
    """``<service> migrate`` applies migrations; ``<service> serve`` runs the API and its workers;
    ``extra`` adds a service's own commands (name -> (help, function of the settings and its arguments))."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("serve", help="run the HTTP API with the outbox relay and consumers")
    for name, (help_text, _run) in (extra or {}).items():
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    settings = settings_factory()
    if args.command == "migrate":
        run_migrations(migrations, settings.database_url)
    elif args.command == "serve":
        serve(app_factory(settings), settings)
    else:
        (extra or {})[args.command][1](settings, rest)
