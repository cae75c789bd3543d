"""Runs one consumer group: each message is applied once, in partition order, or parked.

For each partition, messages are handled strictly one after another:
1. decode the CloudEvent (a record that is not one is parked at once);
2. in one database transaction, claim the event id in the inbox and run the handler;
   a duplicate finds its id claimed and is skipped;
3. a failing handler is retried with exponential backoff and jitter; after
   ``max_attempts`` the message goes to the group's dead-letter topic (and the
   broker's acknowledgement is awaited) before the partition moves on;
4. offsets are committed only after every message up to them succeeded or was parked.

So a failed message is never skipped silently by a later commit, and a poison
message blocks its partition only for the bounded retry time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential_jitter

from send_shared.consumer.deadletter import dead_letter_record
from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_kafka
from send_shared.events.topics import Topics
from send_shared.inbox import Inbox
from send_shared.kafka import new_consumer, publish_all
from send_shared.metrics import CONSUMER_HANDLE_SECONDS, CONSUMER_MESSAGES, CONSUMER_RETRIES
from send_shared.telemetry import context_from_kafka_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("send_shared.consumer")

Handler = Callable[[CloudEvent, AsyncSession], Awaitable[None]]
# Runs last inside every transaction that applied messages, before it commits: work the handlers
# of one batch share (say, recomputing what several events touched) is done once, atomically.
BeforeCommit = Callable[[AsyncSession], Awaitable[None]]
_PRUNE_EVERY_SECONDS = 3600


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: parked without retries."""


class StoppedWhileWaiting(Exception):
    """Shutdown came while a message waited for the database: leave without committing its offset."""


_NOT_RETRYABLE = (PermanentError, EventDecodeError, ValidationError)
_DATABASE_DOWN = (OperationalError, InterfaceError, ConnectionError)


class ConsumerRuntime:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        engine: AsyncEngine,
        before_commit: BeforeCommit | None = None,
        inbox: Inbox,
        producer: AIOKafkaProducer,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        inbox_retention: timedelta = timedelta(days=14),
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.topics = [*topics, Topics.replay(group_id)]
        self.handler = handler
        self.before_commit = before_commit
        self.engine = engine
        self.sessions = session_factory(engine)
        self.inbox = inbox
        self.producer = producer
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.inbox_retention = inbox_retention
        self.dead_letter_topic = Topics.dead_letter(group_id)
        self._last_prune = 0.0
        self._attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = new_consumer(
            self.bootstrap_servers, group_id=self.group_id, client_id=f"{self.group_id}-consumer", topics=self.topics
        )
        await consumer.start()
        log.info("consumer started", extra={"group": self.group_id, "topics": self.topics})
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                for partition, messages in batches.items():
                    if len(messages) == 1 or not await self._process_together(messages):
                        for message in messages:
                            await self._process(message, stop)
                    await self._commit(consumer, partition, messages[-1].offset + 1)
                await self._prune_if_due()
        except StoppedWhileWaiting:
            log.info("consumer stopped while the database was unavailable", extra={"group": self.group_id})
        finally:
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({partition: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member during the batch; it re-reads from the last commit
            # and the inbox turns the repeats into no-ops.
            log.warning("offset commit refused after rebalance", extra={"partition": str(partition), "error": str(exc)})

    async def _process(self, message: ConsumerRecord[bytes, bytes], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        with self._span(message) as span:
            self._attempts = 0
            try:
                event = decode_kafka(message.headers or (), message.value)
                span.set_attribute("messaging.message.id", event.id)
                outcome = await self._apply_with_retries(event, stop)
            except (asyncio.CancelledError, StoppedWhileWaiting):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is parked, never lost
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._park(message, exc, max(self._attempts, 1), stop)
                outcome = "dead_lettered"
        CONSUMER_MESSAGES.labels(self.group_id, message.topic, outcome).inc()
        CONSUMER_HANDLE_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)

    def _span(self, message: ConsumerRecord[bytes, bytes], event: CloudEvent | None = None) -> Any:
        """A ``process <topic>`` consumer span continuing the trace carried in the message's headers."""
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": message.topic,
            "messaging.consumer.group.name": self.group_id,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.offset": message.offset,
        }
        if event is not None:
            attributes["messaging.message.id"] = event.id
        return tracer.start_as_current_span(
            f"process {message.topic}",
            context=context_from_kafka_headers(message.headers or ()),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    def _log_fields(self, event: CloudEvent) -> dict[str, Any]:
        return {"group": self.group_id, "event_id": event.id, "event_type": event.type, "subject": event.subject}

    async def _process_together(self, messages: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """The fast path: a partition's batch in one transaction. Any trouble (a record that is not a
        CloudEvent, a failing handler, a database error) rolls it all back and returns False, and the
        caller then takes the messages one by one, with retries and dead-lettering."""
        started = time.perf_counter()
        try:
            events = [decode_kafka(m.headers or (), m.value) for m in messages]
        except EventDecodeError:
            return False
        outcomes: list[str] = []
        try:
            async with self.sessions() as session, session.begin():
                for message, event in zip(messages, events, strict=True):
                    # Each message keeps its own trace: the span continues the producer's context.
                    with self._span(message, event):
                        if await self.inbox.claim(session, event.id, event.type):
                            await self.handler(event, session)
                            outcomes.append("processed")
                            log.info("event processed", extra=self._log_fields(event))
                        else:
                            outcomes.append("duplicate")
                if self.before_commit is not None:
                    await self.before_commit(session)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.info("batch fell back to one-by-one processing", extra={"group": self.group_id}, exc_info=True)
            return False
        for message, outcome in zip(messages, outcomes, strict=True):
            CONSUMER_MESSAGES.labels(self.group_id, message.topic, outcome).inc()
        CONSUMER_HANDLE_SECONDS.labels(self.group_id).observe((time.perf_counter() - started) / len(messages))
        return True

    async def _apply_with_retries(self, event: CloudEvent, stop: asyncio.Event) -> str:
        """Handler failures are retried ``max_attempts`` times, then the message is parked. An unreachable
        database is not the message's fault: it holds the partition, retrying, until the database answers."""
        delay = self.backoff_initial
        while True:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.max_attempts),
                    wait=wait_exponential_jitter(
                        multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
                    ),
                    retry=retry_if_not_exception_type(_NOT_RETRYABLE),
                    before_sleep=lambda _state: CONSUMER_RETRIES.labels(self.group_id).inc(),
                    reraise=True,
                ):
                    with attempt:
                        self._attempts = attempt.retry_state.attempt_number
                        return await self._apply(event)
            except _DATABASE_DOWN:
                log.warning("database unavailable; holding the partition", extra={"group": self.group_id})
                if stop.is_set():
                    raise StoppedWhileWaiting from None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.backoff_max)
        raise AssertionError("unreachable")

    async def _apply(self, event: CloudEvent) -> str:
        async with self.sessions() as session, session.begin():
            if not await self.inbox.claim(session, event.id, event.type):
                log.info("duplicate event skipped", extra={"event_id": event.id, "event_type": event.type})
                return "duplicate"
            await self.handler(event, session)
            if self.before_commit is not None:
                await self.before_commit(session)
        log.info("event processed", extra=self._log_fields(event))
        return "processed"

    async def _park(
        self, message: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int, stop: asyncio.Event
    ) -> None:
        record = dead_letter_record(
            message, dlq_topic=self.dead_letter_topic, group=self.group_id, error=error, attempts=attempts
        )
        delay = self.backoff_initial
        while True:
            try:
                await publish_all(self.producer, [record])
                break
            except KafkaError:
                # Without the dead letter safely stored the offset must not move: keep trying.
                log.exception("dead-letter publish failed; retrying", extra={"group": self.group_id})
                if stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        log.error(
            "message dead-lettered",
            extra={
                "group": self.group_id,
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "attempts": attempts,
                "error": f"{type(error).__name__}: {error}",
            },
        )

    async def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        try:
            pruned = await self.inbox.prune(self.engine, self.inbox_retention)
        except Exception:
            log.exception("inbox prune failed", extra={"group": self.group_id})
            return
        if pruned:
            log.info("inbox pruned", extra={"group": self.group_id, "rows": pruned})
