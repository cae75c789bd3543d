"""The whole system as real processes: broker, three services, one request, one trace."""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.tokens import mint_token

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    with DevStack(
        var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports, smtp_port=free_port()
    ) as running:
        yield running


def log_records(path: Path) -> list[dict[str, object]]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def wait_for_log(path: Path, predicate: object, timeout: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in log_records(path):
            if predicate(record):  # type: ignore[operator]
                return record
        time.sleep(0.1)
    raise AssertionError(f"no matching log record in {path} within {timeout}s")


def test_every_service_is_ready_and_documents_its_api(stack: DevStack) -> None:
    for service in stack.ports:
        assert httpx.get(f"{stack.url(service)}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{stack.url(service)}/readyz").json()
        assert ready["status"] == "ready", ready
        assert {"database", "broker", "worker broker-watch", "worker kafka-producer"} <= set(ready["checks"])
        assert set(ready["checks"].values()) == {"ok"}
        assert httpx.get(f"{stack.url(service)}/openapi.json").json()["openapi"].startswith("3.")
        assert "http_requests_total" in httpx.get(f"{stack.url(service)}/metrics").text


def test_a_referral_reaches_a_consumer_in_each_other_service_in_one_trace(stack: DevStack) -> None:
    trace_id = secrets.token_hex(16)
    token = mint_token("org-riverside-primary", "referrer")
    response = httpx.post(
        f"{stack.url('referrals')}/v1/referrals",
        json={
            "service_id": "svc-camhs-core",
            "child": {
                "given_name": "Sam",
                "family_name": "Taylor",
                "date_of_birth": "2015-04-12",
                "nhs_number": "9434765919",
            },
            "primary_need": "SEMH",
            "reason": "Anxiety affecting attendance.",
            "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
        },
        headers={
            "authorization": f"Bearer {token}",
            "idempotency-key": secrets.token_hex(8),
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
    )
    assert response.status_code == 201, response.text
    referral_id = response.json()["id"]

    for service in ("waitlists", "notifications"):
        record = wait_for_log(
            stack.log_dir / f"{service}.log",
            lambda r: r.get("message") == "event processed" and r.get("subject") == referral_id,
        )
        assert record["trace_id"] == trace_id, f"{service} handled the event in another trace"
        assert record["event_type"] == "uk.send.referral.submitted.v1"

    ops = mint_token("org-northshire-la", "ops")
    figures = httpx.get(
        f"{stack.url('waitlists')}/v1/metrics/service/svc-camhs-core", headers={"authorization": f"Bearer {ops}"}
    ).json()
    assert figures["waiting"]["waiting"] is None  # 1: withheld from another organisation (brief §6)
    own = mint_token("org-northshire-camhs", "receiver")
    figures = httpx.get(
        f"{stack.url('waitlists')}/v1/metrics/service/svc-camhs-core", headers={"authorization": f"Bearer {own}"}
    ).json()
    assert figures["waiting"]["waiting"] == 1  # its own service, in full


def test_an_agency_receives_signed_events_in_order_by_webhook(stack: DevStack) -> None:
    import time as clock

    from send_devkit.webhook_receiver import Receiver  # the same real receiver the service's own tests use

    receiver = Receiver().start()
    try:
        camhs = {"authorization": f"Bearer {mint_token('org-northshire-camhs', 'receiver')}"}
        endpoint = httpx.post(
            f"{stack.url('notifications')}/v1/endpoints",
            json={"url": f"{receiver.base}/camhs", "event_types": ["uk.send.referral.*"]},
            headers=camhs,
        )
        assert endpoint.status_code == 201, endpoint.text
        receiver.secrets["/camhs"] = endpoint.json()["secret"]
        school = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
        created = httpx.post(
            f"{stack.url('referrals')}/v1/referrals",
            json={
                "service_id": "svc-camhs-core",
                "child": {
                    "given_name": "Ali",
                    "family_name": "Reed",
                    "date_of_birth": "2014-02-01",
                    "nhs_number": "4010232137",
                },
                "primary_need": "SEMH",
                "reason": "Low mood.",
                "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
            },
            headers={**school, "idempotency-key": secrets.token_hex(8)},
        )
        referral_id = created.json()["id"]

        def moves() -> list[Any]:
            return [r for r in receiver.successes("/camhs") if "status" in r.body["data"]]

        latencies = []
        for version, step in enumerate(
            [
                {"status": "acknowledged"},
                {"status": "accepted"},
                {"status": "scheduled", "appointment_at": "2026-12-01T10:00:00Z"},
            ],
            start=1,
        ):
            moved = httpx.post(
                f"{stack.url('referrals')}/v1/referrals/{referral_id}/status",
                json=step,
                headers={**camhs, "if-match": f'"{version}"'},
            )
            assert moved.status_code == 200, moved.text
            answered = clock.monotonic()
            deadline = answered + 20
            while len(moves()) < version + 1 and clock.monotonic() < deadline:
                clock.sleep(0.005)
            latencies.append(clock.monotonic() - answered)
        got = [r for r in receiver.successes("/camhs") if r.body["data"]["referral_id"] == referral_id]
        assert [r.body["data"]["status"] for r in moves()] == ["submitted", "acknowledged", "accepted", "scheduled"]
        consent = [r.body["type"] for r in got if "status" not in r.body["data"]]
        assert consent == ["uk.send.referral.consent.given.v1"], "uk.send.referral.* includes the consent events"
        assert all(r.verified for r in got), "signatures verify with the standardwebhooks library"
        assert "Reed" not in str([r.body for r in got]) and "4010232137" not in str([r.body for r in got])
        print(f"API response to webhook receipt (s): {[round(x, 3) for x in latencies]}")
    finally:
        receiver.stop()


def test_sigterm_stops_every_process_cleanly(stack: DevStack) -> None:
    """Last in the module: stops the stack itself and checks how each process ended."""
    processes = dict(stack.processes)
    stack.stop()
    for service, process in processes.items():
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why it ended.
        assert process.returncode in (0, -signal.SIGTERM), f"{service} exited with {process.returncode}"
        text = (stack.log_dir / f"{service}.log").read_text()
        assert "Traceback" not in text, f"{service} logged a traceback"
        assert any(
            r.get("message") == "Application shutdown complete." for r in log_records(stack.log_dir / f"{service}.log")
        )
