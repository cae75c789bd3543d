"""The committed AsyncAPI document: current, accepted by the official parser (``@asyncapi/parser``, run
with Node), complete, and every example in it valid against its own schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from send_devkit import asyncapi
from send_shared.events.schemas import CLOCKS_UPDATED, SCHEMAS, WAIT_ESTIMATE, WEBHOOK_PING
from send_shared.events.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "asyncapi.yaml"
NODE_MODULES = ROOT / ".venv" / "node" / "node_modules"  # `make node-tools` (pinned @asyncapi/parser)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    return loaded


def test_committed_asyncapi_document_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == asyncapi.render(), "docs/asyncapi.yaml is stale: run `make asyncapi`"


def test_the_official_parser_accepts_the_document() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed to run @asyncapi/parser"
    assert (NODE_MODULES / "@asyncapi" / "parser").is_dir(), "@asyncapi/parser is not installed: run `make node-tools`"
    run = subprocess.run(
        [node, str(Path(__file__).with_name("asyncapi_parse.cjs")), str(DOC_PATH)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    serious = [d for d in result["diagnostics"] if d["severity"] in ("error", "warning")]
    assert result["parsed"], f"the parser rejected the document: {result['diagnostics']}"
    assert not serious, f"the parser found problems: {serious}"


def test_every_published_type_has_a_message_on_its_channel(doc: dict[str, Any]) -> None:
    channels: dict[str, Any] = doc["channels"]
    addresses = {channel["address"] for channel in channels.values()}
    assert {Topics.REFERRAL_EVENTS, Topics.WAITLIST_ALERTS, None} == addresses
    on_kafka = {
        ref["$ref"].rsplit("/", 1)[-1]
        for channel in channels.values()
        if channel["address"]
        for ref in channel["messages"].values()
    }
    assert set(SCHEMAS) == on_kafka
    (webhooks,) = (c for c in channels.values() if c["address"] is None)
    delivered = {ref["$ref"].rsplit("/", 1)[-1].removeprefix("webhook.") for ref in webhooks["messages"].values()}
    assert delivered == {
        t
        for t in SCHEMAS
        if t.startswith(("uk.send.referral.", "uk.send.waitlist.")) and t not in (CLOCKS_UPDATED, WAIT_ESTIMATE)
    } | {WEBHOOK_PING}
    for name, operation in doc["operations"].items():
        assert operation["action"] == "send", name
        assert operation["messages"], name


def test_the_clocks_for_the_family_view_are_on_the_waitlists_topic_for_the_referrals_service(
    doc: dict[str, Any],
) -> None:
    (alerts,) = (c for c in doc["channels"].values() if c["address"] == Topics.WAITLIST_ALERTS)
    assert CLOCKS_UPDATED in {ref["$ref"].rsplit("/", 1)[-1] for ref in alerts["messages"].values()}
    message = doc["components"]["messages"][CLOCKS_UPDATED]
    assert "consumed by the referrals service" in message["description"].lower().replace("\n", " ")
    assert f"webhook.{CLOCKS_UPDATED}" not in doc["components"]["messages"]


def test_the_wait_estimates_are_on_the_waitlists_topic_for_the_referrals_service(doc: dict[str, Any]) -> None:
    (alerts,) = (c for c in doc["channels"].values() if c["address"] == Topics.WAITLIST_ALERTS)
    assert WAIT_ESTIMATE in {ref["$ref"].rsplit("/", 1)[-1] for ref in alerts["messages"].values()}
    message = doc["components"]["messages"][WAIT_ESTIMATE]
    assert "consumed by the referrals service" in message["description"].lower().replace("\n", " ")
    assert f"webhook.{WAIT_ESTIMATE}" not in doc["components"]["messages"]


def test_every_example_matches_its_message(doc: dict[str, Any]) -> None:
    components = doc["components"]
    for name, message in components["messages"].items():
        assert message.get("examples"), f"{name} has no example"
        for example in message["examples"]:
            jsonschema.validate(example["payload"], {**message["payload"], "components": components})
            jsonschema.validate(example["headers"], message["headers"])
            kafka = message.get("bindings", {}).get("kafka")
            if kafka:
                assert kafka["key"]["type"] == "string", name
                assert example["headers"]["ce_type"] == name
            else:
                assert example["payload"]["type"] == message["name"].removeprefix("webhook.")
                assert example["headers"]["webhook-id"] == "msg_" + example["payload"]["id"]


def test_production_kafka_and_webhooks_declare_their_security(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    for server in ("production", "subscriber"):
        (requirement,) = doc["servers"][server]["security"]
        assert requirement["$ref"].rsplit("/", 1)[-1] in schemes
    assert "security" not in doc["servers"]["development"]
