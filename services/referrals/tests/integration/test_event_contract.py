"""The published event contract, checked from the outside.

A plain aiokafka consumer (none of the service's code) reads what the running relay put on
the real broker, and every record must match the committed AsyncAPI document.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from aiokafka import AIOKafkaConsumer

from .conftest import CAMHS, move, submit

DOC_PATH = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.yaml"


async def read_records(bootstrap: str, topic: str, key: bytes, expected: int, within: float = 20) -> list[Any]:
    """Everything on the topic until ``expected`` records with ``key`` have been seen."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: list[Any] = []
    deadline = time.monotonic() + within
    try:
        while sum(r.key == key for r in found) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    return found


async def test_records_on_the_topic_match_the_published_contract(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.settings = runtime.settings.model_copy(update={"run_workers": True})
    await runtime.start()
    try:
        referral_id = (await submit(client)).json()["id"]
        await move(client, referral_id, 1, CAMHS, "receiver", status="accepted")
        await move(client, referral_id, 2, CAMHS, "receiver", status="scheduled", appointment_at="2026-02-03T14:00:00Z")
        records = await read_records(kafka_bootstrap, "referrals.events.v1", referral_id.encode(), expected=4)
    finally:
        await runtime.stop()
    doc = yaml.safe_load(DOC_PATH.read_text())
    seen_types = set()
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        message = doc["components"]["messages"][headers["ce_type"]]
        jsonschema.validate(headers, message["headers"])
        body = json.loads(record.value)
        jsonschema.validate(body, {**message["payload"], "components": doc["components"]})
        assert record.key.decode() == headers["ce_subject"]
        seen_types.add(headers["ce_type"])
    assert "uk.send.directory.service.upserted.v1" in seen_types
    assert "uk.send.referral.consent.given.v1" in seen_types
    mine = [
        (dict(r.headers)["ce_type"].decode(), json.loads(r.value)) for r in records if r.key == referral_id.encode()
    ]
    assert [t for t, _ in mine] == [
        "uk.send.referral.submitted.v1",
        "uk.send.referral.consent.given.v1",  # right after the submission, in the same transaction
        "uk.send.referral.accepted.v1",
        "uk.send.referral.scheduled.v1",
    ], "one referral's events must arrive in order"
    statuses = [m for t, m in mine if "consent" not in t]
    assert [m["version"] for m in statuses] == [1, 2, 3]
    assert [m["status"] for m in statuses] == ["submitted", "accepted", "scheduled"]
    (consent,) = (m for t, m in mine if "consent" in t)
    assert (consent["consent_version"], consent["consent_status"], consent["scope_service_ids"]) == (
        1,
        "given",
        ["svc-camhs-core"],
    )
