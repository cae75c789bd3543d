"""Fuzzing (issue #13): Schemathesis against each service's own OpenAPI document, in-process over ASGI, on
real PostgreSQL (and, with fewer examples, SQLite, where naive datetimes show up) and the session's broker.

For every operation, Schemathesis's examples, coverage and fuzzing phases (positive and negative data)
run with a bounded number of examples, derandomized and without an example database; each case is
sent with the bearer token of one of a few callers (a school referrer, a CAMHS receiver, the local
authority's ops and admin, a platform admin, or no token), and some cases name seeded objects in their
path and query parameters. Every response must:

- not be a server error (``not_a_server_error``);
- conform to the document: a documented status code, a documented content type and a body matching the
  documented schema (``status_code_conformance``, ``content_type_conformance``,
  ``response_schema_conformance``); problem+json 401/403/404/422/429 included;
- give every timestamp a time zone (``timestamps_carry_a_zone``, below).

The counts of examples and every failure (with a curl command that reproduces it) are printed and
written to ``test-artefacts/fuzz-summary.json``.

Implementation note: ``@schema.parametrize()`` (Schemathesis's pytest integration) does not run under
pytest 9.2 (it sets ``request.node._nodeid``, which pytest no longer has), so each operation's Hypothesis
test is built with the same builder that integration uses and run here, one operation after another.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Set
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import SkipTest

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from send_shared.web.problems import PROBLEM_JSON

from .conftest import SERVICES, FuzzTarget, build_service_app

# Fuzzing-phase examples per operation (the examples and coverage phases add their own, deterministic
# cases): chosen so the whole file runs in about three minutes on two cores.
MAX_EXAMPLES = {"postgresql": 80, "sqlite": 30}
SUMMARY_FILE = Path(__file__).resolve().parents[2] / "test-artefacts" / "fuzz-summary.json"
SUMMARY: dict[str, Any] = {}


# --- the time-zone check -----------------------------------------------------------------------------

_LOOKS_LIKE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}|[ ]\d{2}:\d{2})")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _sent_strings(case: schemathesis.Case) -> set[str]:
    """Every string the request carried: a response may echo them, and they are not its timestamps."""
    sent: set[str] = set()
    for part in (case.path_parameters, case.query, case.headers, case.cookies, case.body):
        if isinstance(part, bytes):
            sent.add(part.decode("utf-8", "replace"))
        elif part is not None:
            sent.update(_strings(part))
    return sent


def naive_timestamps(body: Any, sent: Set[str] = frozenset()) -> list[str]:
    """Strings in a JSON body that are ISO-8601 date-times (a 'T', or a space, and a time) without an
    offset or 'Z'; strings the request sent are left out (an echo is the caller's, not a timestamp)."""
    found = []
    for text in _strings(body):
        if text in sent or not _LOOKS_LIKE_DATETIME.match(text):
            continue
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            found.append(text)
    return found


def timestamps_carry_a_zone(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")) or not response.content:
        return None
    naive = naive_timestamps(json.loads(response.content), _sent_strings(case))
    if naive:
        raise AssertionError(f"timestamps without a time zone in the response: {naive[:5]}")
    return True


def test_the_time_zone_check_tells_naive_from_aware() -> None:
    body = {
        "a": "2026-01-05T10:00:00Z",
        "b": [{"c": "2026-01-05T10:00:00.123+01:00"}, "2026-01-05", "not a date", "2026-01-05T10:00"],
        "d": {"2026-01-05T10:00:00": 1, "e": "2026-01-05 10:00:00.5", "f": "2026-01-05T10:00:00 and more"},
    }
    naive = ["2026-01-05T10:00", "2026-01-05T10:00:00", "2026-01-05 10:00:00.5"]
    assert sorted(naive_timestamps(body)) == sorted(naive)
    assert naive_timestamps(body, set(naive)) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_documents_its_problems(service: str, tmp_path: Path) -> None:
    """The shared document says what the shared handlers answer: problem+json, never FastAPI's
    HTTPValidationError: 401, 403, 404 and 429 on every authenticated operation, 422 on every operation
    that takes parameters or a body, and every 4xx problem+json."""
    document = build_service_app(service, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", "127.0.0.1:9").openapi()
    assert "HTTPValidationError" not in json.dumps(document)
    authenticated = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if operation.get("security"):
                authenticated += 1
                assert {"401", "403", "404", "429"} <= set(responses), (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, (method, path)
            for code, response in responses.items():
                if code.startswith("4"):
                    assert PROBLEM_JSON in response["content"], (method, path, code)
                    assert response["content"][PROBLEM_JSON]["schema"]["$ref"].endswith(
                        "/ValidationProblem" if code == "422" else "/ProblemDetails"
                    )
    assert authenticated > 0


CHECKS: list[Callable[..., bool | None]] = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    timestamps_carry_a_zone,
]


# --- the run ---------------------------------------------------------------------------------------


def _case_key(case: schemathesis.Case) -> int:
    """A number fixed by the case's own data: the same case gets the same caller and seeded ids when
    Hypothesis replays or shrinks it, so every failure reproduces."""
    parts = repr((case.path_parameters, case.query, case.headers, case.cookies, case.body))
    return int.from_bytes(hashlib.blake2b(parts.encode(), digest_size=8).digest(), "big")


def _use_seeded_ids(case: schemathesis.Case, target: FuzzTarget, key: int) -> None:
    """Half the cases name seeded objects where the operation has a parameter of a seeded kind (the
    choices use bits of the key other than those that choose the caller)."""
    if key & 1:
        return
    for n, container in enumerate((case.path_parameters, case.query)):
        if container is None:
            continue
        for name in sorted(container):
            values = target.known.get(name)
            if values:
                container[name] = values[(key >> (32 + 4 * n)) % len(values)]


def _settings(backend: str) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=MAX_EXAMPLES[backend],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def fuzz(target: FuzzTarget) -> dict[str, Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    callers = target.callers()
    examples: Counter[str] = Counter()
    by_phase: Counter[str] = Counter()
    statuses: dict[str, Counter[int]] = {}
    failures: dict[str, dict[str, Any]] = {}

    def run_case(case: schemathesis.Case) -> None:
        label = case.operation.label
        key = _case_key(case)
        _use_seeded_ids(case, target, key)
        caller, headers = callers[(key >> 8) % len(callers)]
        examples[label] += 1
        if case.meta is not None:
            by_phase[case.meta.phase.name.value] += 1
        response = case.call(headers=headers)
        statuses.setdefault(label, Counter())[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:
            found = failures.setdefault(label, {"failures": {}, "minimal": None})["failures"]
            for failure in exc.exceptions:
                found.setdefault(
                    failure.title,
                    {
                        "message": failure.message[:1000],
                        "status": response.status_code,
                        "caller": caller,
                        "response": response.content[:500].decode("utf-8", "replace"),
                        "reproduce": case.as_curl_command(headers=dict(response.request.headers)),
                    },
                )
            raise

    started = time.monotonic()
    feedback = FeedbackSources()
    for result in schema.get_all_operations():
        operation = result.ok()
        test = build_operation_test(
            config=schema.config,
            operation=operation,
            test_func=run_case,
            given_kwargs={},
            feedback=feedback,
            explicit_settings=_settings(target.backend),
        )
        try:
            test()
        except SkipTest:  # nothing to generate for this operation
            continue
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; each failure is reported below
            entry = failures.setdefault(operation.label, {"failures": {}, "minimal": None})
            entry["minimal"] = str(exc)[:3000]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "examples": sum(examples.values()),
        "by_phase": dict(by_phase),
        "operations": {
            label: {"examples": n, "statuses": dict(sorted(statuses.get(label, Counter()).items()))}
            for label, n in sorted(examples.items())
        },
        "failures": failures,
    }


def _record(name: str, result: dict[str, Any]) -> None:
    SUMMARY[name] = result
    SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY_FILE.write_text(json.dumps(SUMMARY, indent=2, sort_keys=True))
    print(f"\n{name}: {result['examples']} examples in {result['seconds']} s, by phase {result['by_phase']}")
    for label, entry in result["failures"].items():
        print(f"  FAILED {label}: {sorted(entry['failures'])}")
        for title, details in entry["failures"].items():
            print(f"    {title}: {details['status']} {details['message'][:300]}")
            print(f"      as {details['caller']}: {details['reproduce']}")


def _runs() -> list[Any]:
    return [
        pytest.param(service, backend, id=f"{service}-{backend}")
        for backend in ("postgresql", "sqlite")
        for service in SERVICES
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("service", "backend"), _runs())
def test_fuzz(service: str, backend: str, fuzz_targets: Callable[[str, str], FuzzTarget]) -> None:
    target = fuzz_targets(service, backend)
    result = fuzz(target)
    _record(f"{service}/{backend}", result)
    assert result["examples"] > 0
    problems = {label: entry["minimal"] or entry["failures"] for label, entry in result["failures"].items()}
    assert not problems, json.dumps(problems, indent=1)[:20000]
