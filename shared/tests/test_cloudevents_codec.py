"""Our hand-written Kafka binary-mode codec agrees with the official ``cloudevents`` SDK, both ways."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_kafka, encode_kafka, format_time

FORMAT = JSONFormat()
WHEN = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _ours(**overrides: Any) -> CloudEvent:
    fields: dict[str, Any] = {
        "type": "uk.send.referral.accepted.v1",
        "source": "/send/referrals",
        "subject": "ref-123",
        "id": "7d3f1c2e-0000-4000-8000-000000000001",
        "time": WHEN,
        "data": {"referral_id": "ref-123", "version": 3, "nested": {"list": [1, 2.5, None, True, "x"]}},
        "extensions": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tenant": "la42"},
    }
    fields.update(overrides)
    return CloudEvent(**fields)


def _to_sdk_message(event: CloudEvent, key: bytes | None = b"ref-123") -> sdk_kafka.KafkaMessage:
    headers, value = encode_kafka(event)
    assert len({name for name, _ in headers}) == len(headers), "a header name appears twice"
    return sdk_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)


def _from_sdk_message(message: sdk_kafka.KafkaMessage) -> CloudEvent:
    return decode_kafka(list(message.headers.items()), message.value)


def test_our_encoding_is_read_by_the_sdk() -> None:
    ours = _ours()
    sdk = sdk_kafka.from_binary(_to_sdk_message(ours), FORMAT, SdkEvent)
    assert isinstance(sdk, SdkEvent)
    assert sdk.get_id() == ours.id
    assert sdk.get_source() == ours.source
    assert sdk.get_type() == ours.type
    assert sdk.get_specversion() == "1.0"
    assert sdk.get_subject() == ours.subject
    assert sdk.get_time() == ours.time
    assert sdk.get_datacontenttype() == "application/json"
    assert sdk.get_data() == ours.data
    for name, value in ours.extensions.items():
        assert sdk.get_extension(name) == value
    # The SDK maps the record key to the ``partitionkey`` extension; nothing else is extra.
    assert set(sdk.get_attributes()) == {
        "id",
        "source",
        "type",
        "specversion",
        "subject",
        "time",
        "datacontenttype",
        "partitionkey",
        *ours.extensions,
    }
    assert sdk.get_extension("partitionkey") == "ref-123"


def test_sdk_encoding_is_read_by_us() -> None:
    sdk = SdkEvent(
        attributes={
            "id": "evt-1",
            "source": "/send/waitlists",
            "type": "uk.send.waitlist.alert.v1",
            "subject": "wl-9",
            "time": WHEN,
            "datacontenttype": "application/json",
            "tenant": "la42",
            "attempt": "2",
        },
        data={"waitlist_id": "wl-9", "weeks": 18, "unicode": "Zoë ✓"},
    )
    message = sdk_kafka.to_binary(sdk, FORMAT)
    ours = _from_sdk_message(message)
    assert ours.id == "evt-1"
    assert ours.source == "/send/waitlists"
    assert ours.type == "uk.send.waitlist.alert.v1"
    assert ours.subject == "wl-9"
    assert ours.time == WHEN
    assert ours.specversion == "1.0"
    assert ours.datacontenttype == "application/json"
    assert ours.data == {"waitlist_id": "wl-9", "weeks": 18, "unicode": "Zoë ✓"}
    assert dict(ours.extensions) == {"tenant": "la42", "attempt": "2"}


def test_round_trip_ours_sdk_ours_is_identity() -> None:
    ours = _ours()
    sdk = sdk_kafka.from_binary(_to_sdk_message(ours, key=None), FORMAT, SdkEvent)
    back = _from_sdk_message(sdk_kafka.to_binary(sdk, FORMAT))
    assert back == ours


def test_sdk_encoding_without_optional_attributes() -> None:
    sdk = SdkEvent(attributes={"id": "e2", "source": "/s", "type": "t.v1", "time": WHEN}, data={"a": 1})
    ours = _from_sdk_message(sdk_kafka.to_binary(sdk, FORMAT))
    assert ours.subject is None
    assert ours.datacontenttype == "application/json"  # JSON body, no content-type header
    assert ours.data == {"a": 1}
    assert dict(ours.extensions) == {}


def test_time_travels_in_utc_with_z_suffix() -> None:
    local = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    headers, _ = encode_kafka(_ours(time=local))
    assert dict(headers)["ce_time"] == b"2026-06-01T11:00:00Z"
    assert format_time(WHEN) == "2026-03-01T09:30:15.123456Z"
    sdk = sdk_kafka.from_binary(sdk_kafka.KafkaMessage(headers=dict(headers), key=None, value=b"{}"), FORMAT, SdkEvent)
    assert sdk.get_time() == local
    assert _from_sdk_message(sdk_kafka.to_binary(sdk, FORMAT)).time == local
    assert sdk_kafka.to_binary(sdk, FORMAT).headers["ce_time"] == b"2026-06-01T11:00:00Z"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_kafka(_ours(time=datetime(2026, 1, 1, 0, 0)))


def test_header_names_are_case_insensitive_on_decode() -> None:
    headers, value = encode_kafka(_ours())
    shouted = [(name.upper(), raw) for name, raw in headers]
    assert decode_kafka(shouted, value) == _ours()


def test_structured_mode_matches_the_sdk_json_format() -> None:
    ours = _ours()
    sdk = FORMAT.read(SdkEvent, orjson.dumps(ours.to_structured()))
    assert sdk.get_id() == ours.id
    assert sdk.get_time() == ours.time
    assert sdk.get_subject() == ours.subject
    assert sdk.get_data() == ours.data
    assert sdk.get_extension("tenant") == "la42"


def _valid_headers() -> list[tuple[str, bytes]]:
    headers, _ = encode_kafka(_ours())
    return headers


def _without(name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in _valid_headers() if k != name]


def _replaced(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in _valid_headers()]


@pytest.mark.parametrize(
    ("headers", "value", "message"),
    [
        pytest.param(_without("ce_id"), b"{}", "missing CloudEvents attributes: id", id="missing-id"),
        pytest.param(_without("ce_source"), b"{}", "source", id="missing-source"),
        pytest.param(_without("ce_type"), b"{}", "type", id="missing-type"),
        pytest.param(_without("ce_specversion"), b"{}", "specversion", id="missing-specversion"),
        pytest.param(_replaced("ce_id", b""), b"{}", "id", id="empty-id"),
        pytest.param([], b'{"a": 1}', "missing", id="no-headers"),
        pytest.param(_valid_headers(), b"not json", "not JSON", id="non-json-body"),
        pytest.param(_valid_headers(), b"\x00\xff\xfe", "not JSON", id="binary-body"),
        pytest.param(_valid_headers(), b"[1, 2]", "JSON object", id="json-array-body"),
        pytest.param(_replaced("ce_specversion", b"0.3"), b"{}", "specversion", id="specversion-0.3"),
        pytest.param(_replaced("ce_specversion", b"2.0"), b"{}", "specversion", id="specversion-2.0"),
        pytest.param(_replaced("content-type", b"application/xml"), b"{}", "content-type", id="xml"),
        pytest.param(_replaced("ce_time", b"yesterday"), b"{}", "ce_time", id="bad-time"),
        pytest.param(_replaced("ce_source", b"\xff\xfe"), b"{}", "UTF-8", id="header-not-utf8"),
    ],
)
def test_decode_errors(headers: list[tuple[str, bytes]], value: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode_kafka(headers, value)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(EventDecodeError, ValueError)


# --- property tests -------------------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)  # no lone surrogates
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # JSON numbers orjson writes exactly
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_data = st.dictionaries(_text, _json, max_size=6)
_attribute = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
_extensions = st.dictionaries(
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True).filter(
        lambda n: (
            n not in {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "dataschema", "data"}
            and n != "partitionkey"
        )
    ),
    _attribute,
    max_size=3,
)
_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_data,
    id_=_attribute,
    source=_attribute,
    type_=_attribute,
    subject=st.none() | _attribute,
    time=_times,
    extensions=_extensions,
)
def test_property_round_trip_through_the_sdk(
    data: dict[str, Any],
    id_: str,
    source: str,
    type_: str,
    subject: str | None,
    time: datetime,
    extensions: dict[str, str],
) -> None:
    ours = CloudEvent(type=type_, source=source, data=data, subject=subject, id=id_, time=time, extensions=extensions)
    # ours -> SDK
    sdk = sdk_kafka.from_binary(_to_sdk_message(ours, key=None), FORMAT, SdkEvent)
    assert sdk.get_data() == data
    assert (sdk.get_id(), sdk.get_source(), sdk.get_type(), sdk.get_subject()) == (id_, source, type_, subject)
    assert sdk.get_time() == time
    assert {k: sdk.get_extension(k) for k in extensions} == extensions
    # SDK -> ours
    assert _from_sdk_message(sdk_kafka.to_binary(sdk, FORMAT)) == ours
    # ours -> ours
    headers, value = encode_kafka(ours)
    assert decode_kafka(headers, value) == ours


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=64))
def test_property_arbitrary_bodies_decode_or_raise_decode_error(body: bytes) -> None:
    try:
        event = decode_kafka(_valid_headers(), body)
    except EventDecodeError:
        return
    assert isinstance(event.data, dict)
    assert event.data == (orjson.loads(body) if body else {})


@settings(max_examples=150, deadline=None)
@given(headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=20)), max_size=8))
def test_property_arbitrary_headers_decode_or_raise_decode_error(headers: list[tuple[str, bytes]]) -> None:
    with contextlib.suppress(EventDecodeError):
        decode_kafka(headers, b"{}")


# --- malformed times and headers


def test_ce_time_without_offset_is_a_decode_error() -> None:
    with pytest.raises(EventDecodeError):
        decode_kafka(_replaced("ce_time", b"2026-01-01T00:00:00"), b"{}")


def test_null_header_value_is_a_decode_error() -> None:
    with pytest.raises(EventDecodeError):
        decode_kafka([*_valid_headers(), ("ce_tenant", None)], b"{}")  # type: ignore[list-item]
