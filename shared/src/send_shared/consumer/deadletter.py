"""Dead-letter records: the original message plus why and where it failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from send_shared.kafka import OutgoingRecord

DLQ_PREFIX = "dlq_"
ORIGINAL_TOPIC = "dlq_original_topic"
ORIGINAL_PARTITION = "dlq_original_partition"
ORIGINAL_OFFSET = "dlq_original_offset"
CONSUMER_GROUP = "dlq_consumer_group"
ERROR = "dlq_error"
ATTEMPTS = "dlq_attempts"
FAILED_AT = "dlq_failed_at"
REPLAYED_FROM = "dlq_replayed_from"
_MAX_ERROR_CHARS = 2000


def dead_letter_record(
    message: ConsumerRecord[bytes, bytes], *, dlq_topic: str, group: str, error: BaseException, attempts: int
) -> OutgoingRecord:
    headers = [(k, v) for k, v in (message.headers or ()) if not k.startswith(DLQ_PREFIX)]
    headers += [
        (ORIGINAL_TOPIC, message.topic.encode()),
        (ORIGINAL_PARTITION, str(message.partition).encode()),
        (ORIGINAL_OFFSET, str(message.offset).encode()),
        (CONSUMER_GROUP, group.encode()),
        (ERROR, f"{type(error).__name__}: {error}"[:_MAX_ERROR_CHARS].encode()),
        (ATTEMPTS, str(attempts).encode()),
        (FAILED_AT, datetime.now(UTC).isoformat().encode()),
    ]
    return OutgoingRecord(topic=dlq_topic, key=message.key or b"", value=message.value or b"", headers=headers)


def replay_record(message: ConsumerRecord[bytes, bytes], *, replay_topic: str) -> OutgoingRecord:
    """The original message again, minus the dead-letter headers, for the failed group's replay topic."""
    headers: Sequence[tuple[str, bytes]] = message.headers or ()
    kept = [(k, v) for k, v in headers if not k.startswith(DLQ_PREFIX)]
    kept.append((REPLAYED_FROM, f"{message.topic}:{message.partition}:{message.offset}".encode()))
    return OutgoingRecord(topic=replay_topic, key=message.key or b"", value=message.value or b"", headers=kept)


def header_value(message: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in message.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None
