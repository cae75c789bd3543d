"""OpenTelemetry tracing, trace-context propagation through Kafka headers, and JSON logs carrying trace ids."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pythonjsonlogger.json import JsonFormatter

PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> None:
    trace.set_tracer_provider(tracer_provider(service_name, otlp_endpoint))


def tracer_provider(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """With a collector, spans are sampled as ``OTEL_TRACES_SAMPLER`` says (by default every one) and exported.
    Without one, a span of our own making is not recorded: it still has its trace and span ids, for the logs and
    for the context passed on in HTTP and Kafka headers, but no attributes or events that nothing would read
    (recording them cost a noticeable share of the CPU per referral: ``bench/README.md``, figure 3).
    A span whose caller sampled it is still recorded, so a caller's decision reaches the services after us."""
    resource = Resource.create({"service.name": service_name})
    if not otlp_endpoint:
        return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")))
    return provider


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _JsonLines(JsonFormatter):
    """ISO 8601 times in UTC with their offset, and no terminal colour codes (uvicorn adds a coloured copy of
    some messages as ``color_message``)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data.pop("color_message", None)
        return {k: _ANSI.sub("", v) if isinstance(v, str) else v for k, v in log_data.items()}


class _TraceIdFilter(logging.Filter):
    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid and not hasattr(record, "trace_id"):
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        record.service = self.service_name
        return True


def setup_logging(service_name: str, level: str = "INFO") -> None:
    """One JSON object per line on stdout: time (ISO 8601, UTC), level, logger, message, service, trace_id,
    span_id, extras."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        _JsonLines(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_TraceIdFilter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO: webhook URLs can carry their owners' tokens.
    for noisy in ("aiokafka", "uvicorn.access", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the active span, to store beside an outbox row."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier


def context_from_mapping(carrier: Mapping[str, str]) -> otel_context.Context:
    return PROPAGATOR.extract(carrier)


class _KafkaHeaderGetter(Getter[Iterable[tuple[str, bytes]]]):
    def get(self, carrier: Iterable[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key]
        return values or None

    def keys(self, carrier: Iterable[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


def context_from_kafka_headers(headers: Iterable[tuple[str, bytes]]) -> otel_context.Context:
    return PROPAGATOR.extract(list(headers), getter=_KafkaHeaderGetter())
