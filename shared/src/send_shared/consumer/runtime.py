"""Runs one consumer group: each message is applied once, in partition order, or parked.

For each partition, messages are handled strictly one after another:
1. decode the CloudEvent (a record that is not one is parked at once);
2. in one database transaction, claim the event id in the inbox, run the handler and record the
   partition's position (next offset, last event id); a duplicate finds its id claimed and is skipped
   (a batch's ids are claimed in one statement);
3. a failing handler is retried with exponential backoff and jitter; after ``max_attempts`` the
   message goes to the group's dead-letter topic (and the broker's acknowledgement is awaited) before
   the partition moves on;
4. offsets are committed to Kafka after every message up to them succeeded or was parked.

The position in the database, not Kafka's committed offset, says where to resume (see ``positions``).
A log can be replaced under a consumer (a restarted broker, a topic created again) and grow again
past the consumer's position before anyone notices, even between two fetches of a busy partition;
reading on from there would skip what the new log holds before it. So each partition keeps an
*anchor*, a record applied from it that the broker was last seen to hold. Before a batch is applied,
if the anchor was last confirmed more than ``VERIFY_EVERY`` ago (or never), the broker must show it
still holds the anchor and the last record applied (a fetch each); then the anchor moves up to the last
record applied. If the
broker no longer holds it, the partition is read again from its beginning: the inbox drops what was
applied before, including anything applied from a new log meanwhile, and nothing is skipped, because
the anchor is always a record of the log the partition was being read from when it was confirmed.
A watch beside the loop asks the same question of idle partitions every few seconds, measures lag
and the age of the oldest unread record, and notices topics that vanished, commits that fail and
partitions that stopped moving; ``status`` reports it for readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential_jitter

from send_shared.consumer.deadletter import dead_letter_record
from send_shared.consumer.exclusion import GroupLock
from send_shared.consumer.positions import ConsumerPositions, Position
from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_kafka
from send_shared.events.schemas import ContractViolation
from send_shared.events.topics import Topics
from send_shared.health import detected
from send_shared.inbox import Inbox
from send_shared.kafka import new_consumer, publish_all
from send_shared.kafka_link import as_source
from send_shared.log_probe import LogProbe, Seen, fingerprint
from send_shared.metrics import (
    CONSUMER_HANDLE_SECONDS,
    CONSUMER_LAG,
    CONSUMER_MESSAGES,
    CONSUMER_OLDEST_UNREAD_AGE,
    CONSUMER_RETRIES,
)
from send_shared.telemetry import context_from_kafka_headers
from send_shared.waiting import woken_or_stopped

log = logging.getLogger(__name__)
tracer = trace.get_tracer("send_shared.consumer")

Handler = Callable[[CloudEvent, AsyncSession], Awaitable[None]]
# Runs last inside every transaction that applied messages, before it commits: work the handlers
# of one batch share (say, recomputing what several events touched) is done once, atomically.
BeforeCommit = Callable[[AsyncSession], Awaitable[None]]
# Runs first inside a transaction that applies several messages, with the events its handlers will be given: what
# they would each read (their referrals, say) can be read for all of them in one statement.
BeforeBatch = Callable[[Sequence[CloudEvent], AsyncSession], Awaitable[None]]
# Told after every transaction that applied messages has committed: wakes a worker that reads what the
# handlers wrote (woken from inside the handler, it would look before the commit and miss it).
AfterCommit = Callable[[], None]
Message: TypeAlias = ConsumerRecord[bytes, bytes]
_PRUNE_EVERY_SECONDS = 3600
VERIFY_EVERY = 1.0  # seconds between two confirmations of a busy partition's anchor
COMMIT_EVERY = 1.0  # seconds between two offset commits to Kafka (lag tools only; positions are in the database)
# After this long without a message, fetches may wait IDLE_FETCH_WAIT_MS for one. Kafka answers a waiting fetch as
# soon as a record arrives, so a long wait costs nothing there; the embedded broker (Tansu) holds every fetch for its
# whole wait, where a short one keeps latency low under load and a long one keeps an idle consumer from asking about
# forty times a second. The first message after a quiet spell may wait up to the long wait there.
QUIET_AFTER = 5.0
IDLE_FETCH_WAIT_MS = 500
FETCH_MAX_RECORDS = 500


class _Anchor(NamedTuple):
    offset: int
    fingerprint: str
    confirmed_at: float


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: parked without retries."""


class StoppedWhileWaiting(Exception):
    """Shutdown came while a message waited for the database: leave without committing its offset."""


_NOT_RETRYABLE = (PermanentError, EventDecodeError, ValidationError, ContractViolation)
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
        inbox: Inbox,
        positions: ConsumerPositions,
        producer: Any,
        before_commit: BeforeCommit | None = None,
        before_batch: BeforeBatch | None = None,
        after_commit: AfterCommit | None = None,
        probe: LogProbe | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        inbox_retention: timedelta = timedelta(days=14),
        watch_interval: float = 3.0,
        stuck_after: float = 30.0,
        commit_timeout: float = 5.0,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 25,
        linger: float = 0.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.topics = [*topics, Topics.replay(group_id)]
        self.handler = handler
        self.before_commit = before_commit
        self.before_batch = before_batch
        self.after_commit = after_commit
        self.engine = engine
        self.sessions = session_factory(engine)
        self.inbox = inbox
        self.positions = positions
        self.producer = as_source(producer)
        self.probe = probe or LogProbe(bootstrap_servers, client_id=f"{group_id}-probe")
        self._own_probe = probe is None
        # The loop's own probe: a batch never waits for the watch's look at every partition.
        self.verifier = LogProbe(bootstrap_servers, client_id=f"{group_id}-verifier")
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.inbox_retention = inbox_retention
        self.watch_interval = watch_interval
        self.stuck_after = stuck_after
        self.commit_timeout = commit_timeout
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.linger = linger
        self.dead_letter_topic = Topics.dead_letter(group_id)
        self._last_prune = 0.0
        self._attempts = 0
        # Per partition: the last record applied (offset, fingerprint), as the database has it.
        self._applied: dict[TopicPartition, tuple[int, str]] = {}
        self._rewind: set[TopicPartition] = set()
        self._anchors: dict[TopicPartition, _Anchor] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0
        # Partitions read again from the beginning, with the end they had then: re-reading is over once the
        # loop has passed it (or the watch finds nothing left to read).
        self._rereading: dict[TopicPartition, int | None] = {}
        self._moved_at: dict[TopicPartition, tuple[int, float]] = {}
        self._stuck: dict[TopicPartition, float] = {}
        self._missing_topics: list[str] = []
        self._commit_failing_since: float | None = None
        self._unchecked_since: float | None = None  # the broker was unreachable; logs not checked since
        self._look_now = asyncio.Event()
        self._waiting_for_rebuild = False
        self._turned_at = time.monotonic()
        self._busy = False
        self._fetched_at = time.monotonic()

    # --- readiness -------------------------------------------------------------------------------

    def status(self) -> str | None:
        """Why this group is not well, or None."""
        problems = []
        now = time.monotonic()
        if self._waiting_for_rebuild:
            problems.append("waiting: a rebuild of this group's projection is running")
        if self._unchecked_since is not None:
            problems.append("the broker was unreachable: checking the logs it kept")
        if self._missing_topics:
            problems.append(f"topics missing on the broker: {', '.join(self._missing_topics)}")
        if self._busy and now - self._turned_at > self.stuck_after:
            problems.append(f"stuck: no message finished for {now - self._turned_at:.0f} s")
        for tp, since in sorted(self._stuck.items()):
            problems.append(f"stuck: {tp.topic}[{tp.partition}] has not moved for {now - since:.0f} s")
        if self._rereading:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(self._rereading))
            problems.append(f"healing: re-reading {names} from the beginning (the broker lost its log)")
        if self._commit_failing_since is not None and now - self._commit_failing_since > self.watch_interval:
            problems.append(f"offset commits failing for {now - self._commit_failing_since:.0f} s")
        return "; ".join(problems) or None

    # --- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        lock = GroupLock(self.engine, self.group_id)
        while not await lock.try_shared():  # a rebuild of this group's effects is running
            self._waiting_for_rebuild = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if stop.is_set():
                return
        self._waiting_for_rebuild = False
        try:
            await self._consume(stop, lock)
        finally:
            await lock.release()

    async def _consume(self, stop: asyncio.Event, lock: GroupLock) -> None:
        consumer = new_consumer(
            self.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.group_id}-consumer",
            auto_offset_reset="none",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        consumer.subscribe(topics=self.topics, listener=_Positioner(self, consumer))
        await consumer.start()
        log.info("consumer started", extra={"group": self.group_id, "topics": self.topics})
        watch = asyncio.create_task(self._watch(consumer, stop, lock), name=f"{self.group_id}-watch")
        deferred: KafkaError | None = None
        try:
            while not stop.is_set():
                await self._rewind_replaced(consumer)
                try:
                    if deferred is not None:  # met while gathering: handled now, after what was fetched before it
                        error, deferred = deferred, None
                        raise error
                    batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_MAX_RECORDS)
                    if self.linger and batches:
                        deferred = await self._gather(consumer, batches, stop)
                except OffsetOutOfRangeError as exc:
                    for tp, offset in dict(exc.args[0]).items():
                        detected("offset_out_of_range", "offset out of range: reading the partition again",
                                 group=self.group_id, partition=str(tp), offset=offset)  # fmt: skip
                        self._rewind.add(tp)
                    continue
                except NoOffsetForPartitionError as exc:  # nothing applied, nothing committed: from the start
                    await consumer.seek_to_beginning(*exc.args)
                    continue
                self._turned_at = time.monotonic()
                self._pace_fetches(consumer, bool(batches))
                ready = [
                    (tp, messages) for tp, messages in batches.items() if await self._continues(consumer, tp, messages)
                ]
                if ready:
                    self._busy = True
                    await self._process_fetch(ready, stop)
                    self._busy = False
                    self._turned_at = time.monotonic()
                for partition, messages in ready:
                    self._uncommitted[partition] = messages[-1].offset + 1
                    reread_to = self._rereading.get(partition)
                    if reread_to is not None and reread_to <= messages[-1].offset + 1:
                        del self._rereading[partition]
                await self._commit_if_due(consumer)
                await self._prune_if_due()
        except StoppedWhileWaiting:
            log.info("consumer stopped while the database was unavailable", extra={"group": self.group_id})
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._commit_if_due(consumer, now=True)
            await consumer.stop()
            await self.verifier.stop()
            if self._own_probe:
                await self.probe.stop()

    async def _gather(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Message]], stop: asyncio.Event
    ) -> KafkaError | None:
        """Adds to ``batches`` what arrives within ``linger`` of the first fetch, up to a full fetch, for fewer and
        fuller transactions. The client fetches a partition again only once its buffered records are taken, so this
        asks again and again rather than waiting once. An error of the client's is returned, to be met after
        ``batches`` are applied: raised now, the records already taken from the client would be lost."""
        deadline = time.monotonic() + self.linger
        while not stop.is_set():
            room = FETCH_MAX_RECORDS - sum(len(messages) for messages in batches.values())
            left = deadline - time.monotonic()
            if room <= 0 or left <= 0:
                return None
            try:
                more = await consumer.getmany(timeout_ms=max(1, int(left * 1000)), max_records=room)
            except (OffsetOutOfRangeError, NoOffsetForPartitionError) as exc:
                return exc
            for partition, messages in more.items():
                batches.setdefault(partition, []).extend(messages)
        return None

    def _pace_fetches(self, consumer: AIOKafkaConsumer, fetched: bool) -> None:
        """The broker's wait for a fetch: this group's own while messages come, the long one once it is quiet."""
        now = time.monotonic()
        if fetched:
            self._fetched_at = now
        quiet = now - self._fetched_at > QUIET_AFTER
        consumer._fetcher._fetch_max_wait_ms = max(self.fetch_max_wait_ms, IDLE_FETCH_WAIT_MS if quiet else 0)

    async def _continues(self, consumer: AIOKafkaConsumer, partition: TopicPartition, messages: list[Message]) -> bool:
        """Whether ``messages`` come from the log the partition's anchor is in (asked of the broker at most
        every ``VERIFY_EVERY``)."""
        applied = self._applied.get(partition)
        anchor = self._anchors.get(partition)
        if anchor is None:
            if applied is None:
                return True  # nothing applied from this partition yet: nothing to lose track of
            anchor = _Anchor(applied[0], applied[1], -math.inf)
        now = time.monotonic()
        if now - anchor.confirmed_at < VERIFY_EVERY:
            return True
        seen = await self.verifier.holds(partition, anchor.offset, anchor.fingerprint)
        if seen is Seen.FOUND and applied is not None and applied != (anchor.offset, anchor.fingerprint):
            # The records applied since the anchor were not confirmed: a log replaced meanwhile can hold the
            # anchor again (republished in the same order) and differ after it. Ask for the last one too.
            seen = await self.verifier.holds(partition, applied[0], applied[1])
        if seen is Seen.FOUND:
            latest = applied or (anchor.offset, anchor.fingerprint)
            self._anchors[partition] = _Anchor(latest[0], latest[1], now)
            return True
        if seen is Seen.ABSENT:
            detected("log_replaced", "the broker no longer holds a record applied: reading from the beginning",
                     group=self.group_id, partition=str(partition), offset=anchor.offset)  # fmt: skip
            self._rewind.add(partition)
        else:  # the broker did not say: fetch the batch again and ask again
            consumer.seek(partition, messages[0].offset)
            await asyncio.sleep(0.2)
        return False

    async def _rewind_replaced(self, consumer: AIOKafkaConsumer) -> None:
        """Reads again from the beginning every partition of a topic any of whose logs was replaced, of those
        it applied records from.

        A broker that lost one partition's log lost the topic's, or may have: a partition whose anchor and last
        record applied happen to sit at the same offsets in the new log (republished in much the same order)
        passes the check and would read on, skipping what the new log holds before that offset but the old one
        held after it. The inbox turns what was applied before into no-ops."""
        replaced = self._rewind & consumer.assignment()
        self._rewind = set()
        topics = {tp.topic for tp in replaced}
        rewind = replaced | {tp for tp in self._applied if tp.topic in topics and tp in consumer.assignment()}
        if rewind:
            await consumer.seek_to_beginning(*rewind)
            for tp in rewind:
                self._applied.pop(tp, None)
                self._anchors.pop(tp, None)
                self._rereading[tp] = await self.verifier.true_end(tp)

    async def _commit_if_due(self, consumer: AIOKafkaConsumer, *, now: bool = False) -> None:
        """Kafka's committed offsets serve lag tools; the position that counts is in the database, so they
        are committed at most once every ``COMMIT_EVERY`` (and when the loop ends), not after every batch,
        and a commit the broker refuses (it forgot the topic) is reported, never waited on."""
        if not self._uncommitted or (not now and time.monotonic() - self._committed_at < COMMIT_EVERY):
            return
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in consumer.assignment()}
        self._uncommitted.clear()
        self._committed_at = time.monotonic()
        if offsets:
            await self._commit(consumer, offsets)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await asyncio.wait_for(consumer.commit(offsets), self.commit_timeout)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member during the batch; it re-reads from the last position
            # and the inbox turns the repeats into no-ops.
            log.warning("offset commit refused after rebalance", extra={"partitions": str(offsets), "error": str(exc)})
        except (KafkaError, TimeoutError) as exc:
            if self._commit_failing_since is None:
                self._commit_failing_since = time.monotonic()
                detected("commit_failing", "offset commit failing", group=self.group_id, error=repr(exc))
        else:
            self._commit_failing_since = None

    # --- applying messages -----------------------------------------------------------------------

    async def _process(self, partition: TopicPartition, message: Message, stop: asyncio.Event) -> None:
        started = time.perf_counter()
        with self._span(message) as span:
            self._attempts = 0
            try:
                event = decode_kafka(message.headers or (), message.value)
                span.set_attribute("messaging.message.id", event.id)
                outcome = await self._apply_with_retries(partition, message, event, stop)
            except (asyncio.CancelledError, StoppedWhileWaiting):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is parked, never lost
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._park(message, exc, max(self._attempts, 1), stop)
                await self._save_position_alone(partition, message, stop)
                outcome = "dead_lettered"
        CONSUMER_MESSAGES.labels(self.group_id, message.topic, outcome).inc()
        CONSUMER_HANDLE_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)

    def _span(self, message: Message, event: CloudEvent | None = None) -> Any:
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

    async def _save_position(self, session: AsyncSession, partition: TopicPartition, message: Message) -> Position:
        position = _after(message)
        await self.positions.save(session, partition, position)
        return position

    def _remember(self, partition: TopicPartition, position: Position) -> None:
        self._applied[partition] = (position.next_offset - 1, position.fingerprint)

    async def _process_fetch(self, ready: list[tuple[TopicPartition, list[Message]]], stop: asyncio.Event) -> None:
        """A fetch's messages, every partition's, in one transaction; if that fails, each partition's in one, and
        if that fails too, one by one with retries and dead-lettering. A lone message goes one by one at once.
        Under a steady load a fetch holds a message or two from each of several partitions, and a transaction a
        partition had cost its BEGIN, inbox claim, position and COMMIT for each of them."""
        if sum(len(messages) for _, messages in ready) > 1 and await self._process_together(ready):
            return
        for partition, messages in ready:
            if len(messages) == 1 or len(ready) == 1 or not await self._process_together([(partition, messages)]):
                for message in messages:
                    await self._process(partition, message, stop)
            self._turned_at = time.monotonic()

    async def _process_together(self, batches: list[tuple[TopicPartition, list[Message]]]) -> bool:
        """The fast path: the partitions' messages in one transaction, with each partition's position. Any trouble
        (a record that is not a CloudEvent, a failing handler, a database error) rolls it all back and returns
        False."""
        started = time.perf_counter()
        messages = [message for _, of_partition in batches for message in of_partition]
        try:
            events = [decode_kafka(m.headers or (), m.value) for m in messages]
        except EventDecodeError:
            return False
        outcomes: list[str] = []
        try:
            async with self.sessions() as session, session.begin():
                positions = [(partition, _after(of_partition[-1])) for partition, of_partition in batches]
                claims = await self.positions.save_claiming(
                    session, positions, self.inbox, [(event.id, event.type) for event in events]
                )
                if self.before_batch is not None:
                    await self.before_batch([e for e, claimed in zip(events, claims, strict=True) if claimed], session)
                for message, event, claimed in zip(messages, events, claims, strict=True):
                    # Each message keeps its own trace: the span continues the producer's context.
                    with self._span(message, event):
                        if claimed:
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
            log.info("batch fell back to smaller transactions", extra={"group": self.group_id}, exc_info=True)
            return False
        for partition, position in positions:
            self._remember(partition, position)
        if self.after_commit is not None:
            self.after_commit()
        for message, outcome in zip(messages, outcomes, strict=True):
            CONSUMER_MESSAGES.labels(self.group_id, message.topic, outcome).inc()
        CONSUMER_HANDLE_SECONDS.labels(self.group_id).observe((time.perf_counter() - started) / len(messages))
        return True

    async def _apply_with_retries(
        self, partition: TopicPartition, message: Message, event: CloudEvent, stop: asyncio.Event
    ) -> str:
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
                        return await self._apply(partition, message, event)
            except _DATABASE_DOWN:
                log.warning("database unavailable; holding the partition", extra={"group": self.group_id})
                await self._wait_for_database(stop, delay)
                delay = min(delay * 2, self.backoff_max)
        raise AssertionError("unreachable")

    async def _wait_for_database(self, stop: asyncio.Event, delay: float) -> None:
        if stop.is_set():
            raise StoppedWhileWaiting from None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    async def _apply(self, partition: TopicPartition, message: Message, event: CloudEvent) -> str:
        async with self.sessions() as session, session.begin():
            position = _after(message)
            [claimed] = await self.positions.save_claiming(session, [(partition, position)], self.inbox,
                                                           [(event.id, event.type)])  # fmt: skip
            if claimed:
                await self.handler(event, session)
                if self.before_commit is not None:
                    await self.before_commit(session)
        self._remember(partition, position)
        if claimed and self.after_commit is not None:
            self.after_commit()
        if not claimed:
            log.info("duplicate event skipped", extra={"event_id": event.id, "event_type": event.type})
            return "duplicate"
        log.info("event processed", extra=self._log_fields(event))
        return "processed"

    async def _save_position_alone(self, partition: TopicPartition, message: Message, stop: asyncio.Event) -> None:
        """After parking a message: the partition moves past it, in a transaction of its own."""
        delay = self.backoff_initial
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    position = await self._save_position(session, partition, message)
                self._remember(partition, position)
                return
            except _DATABASE_DOWN:
                await self._wait_for_database(stop, delay)
                delay = min(delay * 2, self.backoff_max)

    async def _park(self, message: Message, error: BaseException, attempts: int, stop: asyncio.Event) -> None:
        record = dead_letter_record(
            message, dlq_topic=self.dead_letter_topic, group=self.group_id, error=error, attempts=attempts
        )
        delay = self.backoff_initial
        while True:
            try:
                await publish_all(await self.producer.get(), [record])
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

    # --- positions ---------------------------------------------------------------------------------

    async def position(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Called on assignment: resume where the database says. Whether the broker still holds the last
        record applied is asked before the first batch is applied (``_continues``), not here: a rebalance
        must not wait on probes."""
        saved = await self.positions.load(self.engine, assigned)
        for tp in sorted(assigned):
            self._moved_at.pop(tp, None)
            position = saved.get(tp)
            if position is None:
                continue  # never applied anything here: Kafka's committed offset, or the beginning
            consumer.seek(tp, position.next_offset)
            self._applied[tp] = (position.next_offset - 1, position.fingerprint)
            self._anchors.pop(tp, None)  # confirmed before the first batch is applied

    def forget(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._applied.pop(tp, None)
            self._anchors.pop(tp, None)
            self._rereading.pop(tp, None)
            self._stuck.pop(tp, None)
            self._moved_at.pop(tp, None)

    # --- the watch ---------------------------------------------------------------------------------

    def broker_unreachable(self) -> None:
        """Told that the broker stopped answering: the watch looks as soon as it can, and readiness says
        the logs are unchecked until it has."""
        if self._unchecked_since is None:
            self._unchecked_since = time.monotonic()
        self._anchors = {tp: anchor._replace(confirmed_at=-math.inf) for tp, anchor in self._anchors.items()}
        self._look_now.set()

    async def _watch(self, consumer: AIOKafkaConsumer, stop: asyncio.Event, lock: GroupLock) -> None:
        while not stop.is_set():
            self._look_now.clear()
            try:
                if not lock.held and not await lock.try_shared():
                    log.error("lost the group's lock and a rebuild holds it now", extra={"group": self.group_id})
                if await self._look(consumer):
                    self._unchecked_since = None
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer watch failed", extra={"group": self.group_id})
            interval = 0.5 if self._unchecked_since is not None else self.watch_interval
            await woken_or_stopped(self._look_now, stop, interval)

    async def _look(self, consumer: AIOKafkaConsumer) -> bool:
        """One look at every assigned partition; False when the broker did not answer."""
        topics = await self.probe.topics()
        if topics is None:
            self.broker_unreachable()
            return False
        missing = [t for t in self.topics if t not in topics]
        if missing and not self._missing_topics:
            detected("topic_missing", "subscribed topics vanished from the broker", group=self.group_id, topics=missing)
        if self._missing_topics and not missing:
            # The topics are back (created again): fetch metadata now, not at the next periodic refresh, and
            # read their new logs from the beginning.
            await consumer._client.force_metadata_update()
            self._rewind |= {tp for tp in self._applied if tp.topic in self._missing_topics}
        self._missing_topics = missing
        oldest_unread_ms: int | None = None
        now = time.monotonic()
        complete = True
        gone = {tp for tp in consumer.assignment() if tp.partition not in topics.get(tp.topic, set())}
        if gone and not missing:
            # Assigned partitions the broker no longer has (a topic created again with fewer): the group's
            # metadata is stale; fetching it again makes the group rebalance.
            await consumer._client.force_metadata_update()
        for tp in sorted(consumer.assignment() - gone):
            applied = self._applied.get(tp)
            end: int | None = None
            seen = Seen.FOUND
            if applied is not None:  # one fetch says whether the last record applied is there, and where the end is
                probe = await self.probe.record_at(tp, applied[0], topics)
                seen = Seen.ABSENT if probe.seen is Seen.FOUND and probe.fingerprint != applied[1] else probe.seen
                end = probe.end
            if seen is Seen.ABSENT:
                detected("log_replaced", "the broker no longer holds the last record applied: reading from the beginning",
                         group=self.group_id, partition=str(tp), offset=applied[0] if applied else None)  # fmt: skip
                self._rewind.add(tp)
                continue
            if end is None:
                end = await self.probe.true_end(tp)
            if end is None or seen is Seen.UNKNOWN:
                complete = False
                continue
            next_offset = applied[0] + 1 if applied is not None else 0
            lag = max(0, end - next_offset) if tp not in self._rewind else end
            CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)
            if lag == 0:
                self._rereading.pop(tp, None)
                self._stuck.pop(tp, None)
                self._moved_at[tp] = (next_offset, now)
                continue
            unread = await self.probe.record_at(tp, next_offset, topics)
            if unread.timestamp_ms is not None:
                oldest_unread_ms = min(oldest_unread_ms or unread.timestamp_ms, unread.timestamp_ms)
            last_offset, since = self._moved_at.get(tp, (None, now))
            if last_offset != next_offset:
                self._moved_at[tp] = (next_offset, now)
                self._stuck.pop(tp, None)
            elif now - since > self.stuck_after:
                self._stuck[tp] = since
        CONSUMER_OLDEST_UNREAD_AGE.labels(self.group_id).set(
            max(0.0, time.time() - oldest_unread_ms / 1000) if oldest_unread_ms is not None else 0.0
        )
        return complete


class _Positioner(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: ConsumerRuntime, consumer: AIOKafkaConsumer) -> None:
        self.runtime = runtime
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.runtime.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.runtime.position(self.consumer, set(assigned))


def _after(message: Message) -> Position:
    """The partition's position once ``message`` is applied: the next offset, and the message's fingerprint."""
    return Position(message.offset + 1, fingerprint(message))
