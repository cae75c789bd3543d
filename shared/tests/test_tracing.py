"""Spans are recorded only where something will read them, and trace context flows either way: without a
collector a span has ids (for the logs and the headers passed on) but records nothing; a caller's sampled
context is still honoured; with a collector every span is recorded."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from send_shared.telemetry import PROPAGATOR, tracer_provider

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


def _remote(sampled: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(TRACE_ID, 0xB7AD6B7169203331, is_remote=True, trace_flags=flags)
    return set_span_in_context(NonRecordingSpan(parent))


def test_without_a_collector_a_span_records_nothing_but_has_ids_that_are_passed_on() -> None:
    tracer = tracer_provider("svc", None).get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        assert not span.is_recording()
        context = span.get_span_context()
        assert context.is_valid and not context.trace_flags.sampled
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
    assert carrier["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_a_callers_trace_goes_on_and_its_sampling_decision_is_kept() -> None:
    tracer = tracer_provider("svc", None).get_tracer("test")
    with tracer.start_as_current_span("sampled upstream", context=_remote(sampled=True)) as span:
        assert span.is_recording() and span.get_span_context().trace_id == TRACE_ID
    with tracer.start_as_current_span("unsampled upstream", context=_remote(sampled=False)) as span:
        assert not span.is_recording() and span.get_span_context().trace_id == TRACE_ID


def test_with_a_collector_every_span_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    provider = tracer_provider("svc", "http://127.0.0.1:9")  # nothing listens: the span is never ended, so never sent
    try:
        assert provider.get_tracer("test").start_span("work").is_recording()
    finally:
        provider.shutdown()


def test_log_lines_carry_the_trace_of_an_unrecorded_span(lines: io.StringIO) -> None:
    with tracer_provider("svc", None).get_tracer("test").start_as_current_span("work") as span:
        logging.getLogger("send.test").info("inside")
    (line,) = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
