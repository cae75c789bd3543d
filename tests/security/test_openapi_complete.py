"""Issue #16: the referrals, waitlists and notifications OpenAPI documents are complete enough for a school or
agency developer to work from: every operation has a summary and a description, every field of every schema a
description, every request body an example, every 4xx a problem+json body; the headers the server requires are
required; and the code lists the server enforces (reasons, outcomes, clocks, statuses, event types) are enums in
the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from send_shared.web.problems import PROBLEM_JSON

from .conftest import build_service_app

SERVICES = ("referrals", "waitlists", "notifications")
METHODS = ("get", "put", "post", "delete", "patch")
IDEMPOTENT_WRITES = {
    ("post", "/v1/referrals"),
    ("post", "/v1/referrals/import"),
    ("post", "/v1/referrals/{referral_id}/consent"),
}
# Fields that carry a code from a list the server enforces or produces (or, for a map, are keyed by one): each
# must show the list as an enum.
CODE_FIELDS = {
    "referrals": {
        "StatusChange": ("reason_code", "outcome_code"),
        "ReferralOut": ("reason_code", "outcome_code", "status", "urgency", "primary_need"),
        "HistoryEntry": ("reason_code", "outcome_code", "status"),
        "FamilyLinkOut": ("state",),
        "ConsentActionIn": ("action", "given_by"),
        "ConsentHistoryOut": ("status", "allowed_actions", "referral_status"),
        "ConsentEventOut": ("status", "given_by", "recorded_via"),
        "ConsentInForce": ("status", "given_by"),
        "SignpostOut": ("trigger", "taken_up_by"),
    },
    "waitlists": {
        "ClockStateOut": ("clock", "state"),
        "FiguresOut": ("clocks", "rejections_by_reason"),
        "TrendOut": ("clock",),
        "PredictedWaitOut": ("clock",),
        "ForecastRowOut": ("scope", "breaches", "breaches_with_extra", "avoided"),
    },
    "notifications": {
        "EndpointIn": ("event_types", "urgencies"),
        "EndpointOut": ("event_types", "urgencies", "status"),
        "EndpointWithSecret": ("event_types", "urgencies", "status"),
        "DeliveryOut": ("event_type", "status"),
        "EmailPreferencesBody": ("new_referrals",),
        "ReferralEventV1": ("status", "previous_status"),
    },
}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each service's document, as its app serves it (building it needs no database)."""
    built = {}
    for service in SERVICES:
        database = tmp_path_factory.mktemp(service) / "unused.db"
        built[service] = build_service_app(service, f"sqlite+aiosqlite:///{database}", "127.0.0.1:9").openapi()
    return built


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    service: str = request.param
    return service


@pytest.fixture
def document(documents: dict[str, dict[str, Any]], service: str) -> dict[str, Any]:
    return documents[service]


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _properties(name: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a schema, nested inline objects and alternatives included, by dotted path."""
    for key, prop in schema.get("properties", {}).items():
        yield f"{name}.{key}", prop
        yield from _properties(f"{name}.{key}", prop)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            yield from _properties(name, schema[keyword])
    for keyword in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(keyword, []):
            yield from _properties(name, alternative)


def _enums(document: dict[str, Any], schema: dict[str, Any]) -> list[list[Any]]:
    schema = _resolve(document, schema)
    found = [schema["enum"]] if "enum" in schema else []
    for keyword in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(keyword, []):
            found += _enums(document, alternative)
    for keyword in ("items", "propertyNames"):
        if isinstance(schema.get(keyword), dict):
            found += _enums(document, schema[keyword])
    return found


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = [(m, p) for m, p, op in _operations(document) if not (op.get("summary") and op.get("description"))]
    assert not missing


def test_every_parameter_has_a_description(document: dict[str, Any]) -> None:
    missing = [
        (m, p, parameter["name"])
        for m, p, op in _operations(document)
        for parameter in op.get("parameters", [])
        if not parameter.get("description")
    ]
    assert not missing


def test_every_field_of_every_schema_has_a_description(document: dict[str, Any]) -> None:
    missing = [
        path
        for name, schema in document["components"]["schemas"].items()
        for path, prop in _properties(name, schema)
        if not prop.get("description")
    ]
    assert not missing


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(document):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            schema = _resolve(document, content.get("schema", {}))
            if not ({"example", "examples"} & (set(content) | set(schema))):
                missing.append((method, path, media))
    assert not missing


def test_every_main_response_body_has_an_example(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(document):
        for code, response in op["responses"].items():
            content = response.get("content", {}).get("application/json")
            if not code.startswith("2") or content is None:
                continue
            schema = _resolve(document, content.get("schema", {}))
            if schema.get("type") == "array":
                schema = _resolve(document, schema["items"])
            if not ({"example", "examples"} & (set(content) | set(schema))):
                missing.append((method, path, code))
    assert not missing


def test_every_4xx_answer_is_problem_json(document: dict[str, Any]) -> None:
    wrong = [
        (m, p, code)
        for m, p, op in _operations(document)
        for code, response in op["responses"].items()
        if code.startswith("4") and "$ref" not in response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    ]
    assert not wrong


def test_the_import_documents_its_unsupported_media_type(documents: dict[str, dict[str, Any]]) -> None:
    assert "415" in documents["referrals"]["paths"]["/v1/referrals/import"]["post"]["responses"]


def test_idempotency_key_is_required_where_the_server_requires_it(document: dict[str, Any], service: str) -> None:
    for method, path, op in _operations(document):
        keys = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        if (method, path) in IDEMPOTENT_WRITES:
            assert [key.get("required") for key in keys] == [True], (method, path)
            assert keys[0]["schema"].get("maxLength") == 255
        else:
            assert not keys, (method, path)
    if service == "referrals":
        assert {(m, p) for m, p, _ in _operations(document)} >= IDEMPOTENT_WRITES


def test_code_fields_carry_their_enums(document: dict[str, Any], service: str) -> None:
    schemas = document["components"]["schemas"]
    for model, fields in CODE_FIELDS[service].items():
        matching = [name for name in schemas if name == model or name.startswith(f"{model}-")]
        assert matching, model
        for name in matching:
            for field in fields:
                assert _enums(document, schemas[name]["properties"][field]), f"{name}.{field}"


def test_the_move_codes_name_each_status_list(documents: dict[str, dict[str, Any]]) -> None:
    """The move's reason_code shows the rejection and the hold reasons as separate lists (the server checks
    one or the other, by status); outcome_code every outcome."""
    from referrals.domain.codes import HoldReason, Outcome, RejectionReason

    document = documents["referrals"]
    schemas = document["components"]["schemas"]
    change = next(schema for name, schema in schemas.items() if name.startswith("StatusChange"))
    reasons = _enums(document, change["properties"]["reason_code"])
    assert sorted(RejectionReason) in [sorted(codes) for codes in reasons]
    assert sorted(HoldReason) in [sorted(codes) for codes in reasons]
    outcomes = {code for codes in _enums(document, change["properties"]["outcome_code"]) for code in codes}
    assert outcomes == set(Outcome)
