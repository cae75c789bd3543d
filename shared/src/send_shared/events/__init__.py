"""Event contract: CloudEvents envelope, Kafka binary-mode codec, versioned payload schemas, topic names."""

from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_kafka, encode_kafka
from send_shared.events.topics import Topics

__all__ = ["CloudEvent", "EventDecodeError", "Topics", "decode_kafka", "encode_kafka"]
