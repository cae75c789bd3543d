"""CloudEvents 1.0 envelope and its Kafka *binary* content mode.

Follows the CloudEvents Kafka protocol binding exactly as the ``cloudevents`` SDK
implements it (``cloudevents.core.bindings.kafka``): every context attribute is a
``ce_<name>`` header with a UTF-8 value, ``datacontenttype`` travels as the
``content-type`` header, ``time`` is RFC 3339 with a ``Z`` suffix, and the body is
the JSON data. Written by hand rather than calling the SDK on the hot path because
the relay and replay move tens of thousands of events a second; a round-trip test
holds it to the SDK.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

SPECVERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
CE_PREFIX = "ce_"
_PREFIX_LENGTH = len(CE_PREFIX)
CONTENT_TYPE_HEADER = "content-type"
_REQUIRED = ("id", "source", "type", "specversion")
# The attribute headers as this system writes them, looked up whole: a replay decodes millions of records.
_ATTRIBUTE_HEADERS = {
    CE_PREFIX + name: name for name in (*_REQUIRED, "time", "subject", "referralversion", "dataschema")
}

KafkaHeaders = list[tuple[str, bytes]]


class EventDecodeError(ValueError):
    """A Kafka record that is not a valid CloudEvent in binary mode; never worth retrying."""


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("CloudEvent time must be timezone-aware")
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] == "z" else text)  # "Z" it reads itself
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset (RFC 3339 requires one)")
    return value


@dataclass(frozen=True, slots=True)
class CloudEvent:
    type: str
    source: str
    data: Mapping[str, Any]
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    specversion: str = SPECVERSION
    datacontenttype: str = JSON_CONTENT_TYPE
    extensions: Mapping[str, str] = field(default_factory=dict)

    def to_structured(self) -> dict[str, Any]:
        """JSON structured mode (used for webhook bodies)."""
        doc: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_time(self.time),
            "datacontenttype": self.datacontenttype,
        }
        if self.subject is not None:
            doc["subject"] = self.subject
        doc.update(self.extensions)
        doc["data"] = dict(self.data)
        return doc


def encode_headers(event: CloudEvent) -> KafkaHeaders:
    headers: KafkaHeaders = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", format_time(event.time).encode()),
        (CONTENT_TYPE_HEADER, event.datacontenttype.encode()),
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    headers.extend((CE_PREFIX + name, value.encode()) for name, value in event.extensions.items())
    return headers


def encode_kafka(event: CloudEvent) -> tuple[KafkaHeaders, bytes]:
    """Headers and value of the Kafka record carrying ``event`` in binary mode."""
    return encode_headers(event), orjson.dumps(event.data)


class DecodedHeaders(NamedTuple):
    attributes: dict[str, str]
    content_type: str
    time: datetime | None


def decode_attributes(headers: Iterable[tuple[str, bytes | None]]) -> DecodedHeaders:
    """The context attributes, content type and time of a binary-mode record, checked as ``decode_kafka``
    checks them (the replay reads the type from these and validates the body straight into its schema)."""
    attributes: dict[str, str] = {}
    content_type = JSON_CONTENT_TYPE
    try:
        for name, raw in headers:
            attribute = _ATTRIBUTE_HEADERS.get(name)
            if attribute is None:
                lowered = name.lower()
                if lowered == CONTENT_TYPE_HEADER:
                    if raw is None:
                        raise EventDecodeError(f"header {name!r} has no value")
                    content_type = raw.decode()
                    continue
                if lowered[:_PREFIX_LENGTH] != CE_PREFIX:
                    continue
                attribute = lowered[_PREFIX_LENGTH:]
            if raw is None:
                raise EventDecodeError(f"header {name!r} has no value")
            attributes[attribute] = raw.decode()
    except UnicodeDecodeError as exc:
        raise EventDecodeError(f"header is not UTF-8: {exc}") from exc
    if not all(map(attributes.get, _REQUIRED)):
        missing = [name for name in _REQUIRED if not attributes.get(name)]
        raise EventDecodeError(f"missing CloudEvents attributes: {', '.join(missing)}")
    if attributes["specversion"] != SPECVERSION:
        raise EventDecodeError(f"unsupported specversion {attributes['specversion']!r}")
    if not content_type.startswith(JSON_CONTENT_TYPE):
        raise EventDecodeError(f"unsupported content-type {content_type!r}")
    try:
        time = parse_time(attributes["time"]) if "time" in attributes else None
    except ValueError as exc:
        raise EventDecodeError(f"bad ce_time: {exc}") from exc
    return DecodedHeaders(attributes, content_type, time)


def decode_kafka(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> CloudEvent:
    attributes, content_type, time = decode_attributes(headers)
    try:
        data = orjson.loads(value) if value else {}
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("body must be a JSON object")
    core = {"id", "source", "type", "specversion", "time", "subject"}
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        specversion=attributes["specversion"],
        subject=attributes.get("subject"),
        time=time or datetime.now(UTC),
        datacontenttype=content_type,
        data=data,
        extensions={k: v for k, v in attributes.items() if k not in core},
    )
