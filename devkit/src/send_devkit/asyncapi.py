"""The AsyncAPI 3 document of everything the system publishes: the two public Kafka topics and the
webhook deliveries, generated from the Pydantic schemas in ``send_shared.events.schemas``.

FastStream describes the Kafka servers, channels, operations and payloads; this module adds what it
cannot know: one message per CloudEvents type with the binary-mode ``ce_*`` headers, the Kafka key,
an example of each message, the security of production Kafka, and the webhook channel (the CloudEvent
in JSON structured mode, signed per Standard Webhooks) with its ping. ``@asyncapi/parser`` validates
the result in ``make test``.

    python -m send_devkit.asyncapi > docs/asyncapi.yaml      (or: make asyncapi)
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import Any

import yaml
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    CLOCK_BREACHED,
    CLOCKS_UPDATED,
    ORGANISATION_UPSERTED,
    SERVICE_UPSERTED,
    SIGNPOST_TAKEN_UP,
    SIGNPOSTED,
    WAIT_ESTIMATE,
    WEBHOOK_PING,
    ClockAlertV1,
    ClockStateV1,
    ConsentGiver,
    ConsentStatus,
    EventPayload,
    OrganisationV1,
    ReferralClocksV1,
    ReferralConsentV1,
    ReferralEventV1,
    ReferralSignpostedV1,
    ReferralStatus,
    ServiceV1,
    SignpostTakenUpV1,
    WaitEstimateV1,
    WebhookPingV1,
    consent_event_type,
    referral_event_type,
)
from send_shared.events.topics import Topics
from send_shared.events.webhooks import AnyStructuredEvent

VERSION = "1.1.0"
REFERRALS = "referral events"
ALERTS = "waitlist alerts"
WEBHOOKS = "webhook deliveries"
_TEXT = {"type": "string"}
_KAFKA_BINDING = "0.5.0"
_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


# --- examples: one per message type, built from the schemas so they cannot drift ------------------


def _referral_example(status: ReferralStatus) -> ReferralEventV1:
    extras: dict[ReferralStatus, dict[str, Any]] = {
        ReferralStatus.REJECTED: {"reason_code": "threshold_not_met", "signposted_service_id": "svc-northshire-mhst"},
        ReferralStatus.SCHEDULED: {"appointment_at": datetime(2026, 3, 16, 10, tzinfo=UTC)},
        ReferralStatus.ON_HOLD: {"reason_code": "awaiting_information", "expected_resume": date(2026, 3, 20)},
        ReferralStatus.HANDED_OFF: {
            "linked_referral_id": "ref-01HQ7Z3K8M2N4P6R8T0V2X4Z6B",
            "onward_service_id": "svc-northshire-ehc",
        },
        ReferralStatus.COMPLETED: {"outcome_code": "support_completed"},
    }
    extra = extras.get(status, {})
    first = status is ReferralStatus.SUBMITTED
    return ReferralEventV1(
        referral_id="ref-01HQ7Z3K8M2N4P6R8T0V2X4Z6A",
        version=1 if first else 3,
        status=status,
        previous_status=None if first else ReferralStatus.ACCEPTED,
        child_ref="c1_4f9a1c0d6e2b8a7f3c5d9e1b2a4c6f8e",
        referrer_org_id="org-riverside-primary",
        service_id="svc-northshire-camhs",
        receiving_org_id="org-northshire-camhs",
        urgency="routine",
        primary_need="SEMH",
        occurred_at=_AT,
        recorded_at=_AT,
        **extra,
    )


def _consent_example(status: ConsentStatus) -> ReferralConsentV1:
    withdrawn = status is ConsentStatus.WITHDRAWN
    return ReferralConsentV1(
        referral_id="ref-01HQ7Z3K8M2N4P6R8T0V2X4Z6A",
        consent_version={ConsentStatus.GIVEN: 1, ConsentStatus.CHANGED: 2, ConsentStatus.WITHDRAWN: 3}[status],
        consent_status=status,
        given_by=ConsentGiver.PARENT,
        scope_service_ids=[] if withdrawn else ["svc-northshire-camhs", "svc-northshire-ehc"],
        scope_organisation_ids=["org-northshire-la"] if status is ConsentStatus.CHANGED else [],
        child_ref="c1_4f9a1c0d6e2b8a7f3c5d9e1b2a4c6f8e",
        referrer_org_id="org-riverside-primary",
        service_id="svc-northshire-camhs",
        receiving_org_id="org-northshire-camhs",
        occurred_at=_AT,
        recorded_at=_AT,
    )


_CONSENT_DESCRIPTIONS = {
    ConsentStatus.GIVEN: "Consent to share the referral given: at submission (right after `submitted`, consent_version "
    "1) and when given again after a withdrawal. The scope says which services and organisations may receive it.",
    ConsentStatus.CHANGED: "Consent changed: a new scope or a new giver. Hand-offs and re-referrals go only to "
    "services in the scope.",
    ConsentStatus.WITHDRAWN: "Consent withdrawn: onward sharing stops at once (no hand-off, no re-referral). Before "
    "acceptance the referral is withdrawn too, its `withdrawn` event (reason_code consent_withdrawn) right after this "
    "one; after acceptance the receiving organisation decides (complete it, or continue under a statutory duty).",
}


def _alert_example(event_type: str) -> ClockAlertV1:
    breached = event_type == CLOCK_BREACHED
    return ClockAlertV1(
        referral_id="ref-01HQ7Z3K8M2N4P6R8T0V2X4Z6A",
        clock="cypmh_4w",
        service_id="svc-northshire-camhs",
        receiving_org_id="org-northshire-camhs",
        referrer_org_id="org-riverside-primary",
        target_days=28,
        start_date=date(2026, 2, 2),
        breach_date=date(2026, 3, 3),
        waiting_days=29 if breached else 23,
        raised_on=date(2026, 3, 3) if breached else date(2026, 2, 25),
    )


_CLOCKS_EXAMPLE = ReferralClocksV1(
    referral_id="ref-01HQ7Z3K8M2N4P6R8T0V2X4Z6C",
    referral_version=3,
    service_id="svc-northshire-ehc",
    receiving_org_id="org-northshire-la",
    referrer_org_id="org-riverside-primary",
    clocks=[
        ClockStateV1(clock="ehc_decision_6w", target_days=42, start_date=date(2026, 1, 19), state="met",
                     stopped_on=date(2026, 2, 23)),
        ClockStateV1(clock="ehc_plan_20w", target_days=140, start_date=date(2026, 1, 19), state="running",
                     breach_date=date(2026, 6, 9)),
    ],
)  # fmt: skip
_ESTIMATE_EXAMPLE = WaitEstimateV1(
    service_id="svc-northshire-camhs", as_of=date(2026, 3, 2), window_weeks=26, children=143, enough_data=True,
    to_support_median_days=41, to_support_p90_days=97, to_support_p90_low_days=84, to_support_p90_high_days=120,
    to_clock_stop_median_days=25, to_clock_stop_p90_days=44,
)  # fmt: skip
# Published on the alerts topic for the referrals service (the family view's deadline, the predicted wait a school
# sees): no organisation's webhook.
NOT_DELIVERED_AS_WEBHOOKS = frozenset({CLOCKS_UPDATED, WAIT_ESTIMATE})


# Support while waiting (issue 18): published by the referrals service, delivered as webhooks to both parties.
_SIGNPOST_EXAMPLES: dict[str, tuple[str, EventPayload, str]] = {
    SIGNPOSTED: (
        "Referral signposted to support while waiting",
        ReferralSignpostedV1(
            referral_id="3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b", referrer_org_id="org-riverside-primary",
            service_id="svc-camhs-core", receiving_org_id="org-northshire-camhs", trigger="long_wait",
            offer_ids=["io-camhs-parent-workshops", "io-family-voice-peer-support"],
            provider_org_ids=["org-northshire-camhs", "org-family-voice"], primary_need="SEMH",
            occurred_at=_AT,
        ),
        "The referral was signposted to interim offers (directory ids, the service's own first): accepted at a "
        "service whose predicted wait to support (90th percentile) is over the threshold (trigger long_wait), or "
        "a clock nearing breach (clock_breach_imminent). Ids and codes only.",
    ),
    SIGNPOST_TAKEN_UP: (
        "Signpost taken up",
        SignpostTakenUpV1(
            referral_id="3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b", referrer_org_id="org-riverside-primary",
            service_id="svc-camhs-core", receiving_org_id="org-northshire-camhs",
            offer_id="io-family-voice-peer-support", provider_org_id="org-family-voice", recorded_by="family",
            occurred_at=_AT,
        ),
        "An interim offer the referral was signposted to was taken up, as its referrer, its receiver or the "
        "family (on the family view) recorded.",
    ),
}  # fmt: skip


_DIRECTORY_EXAMPLES: dict[str, EventPayload] = {
    ORGANISATION_UPSERTED: OrganisationV1(
        organisation_id="org-riverside-primary",
        version=2,
        name="Riverside Primary School",
        kind="school",
        area_id="area-northshire",
        trust_id="trust-river-valley",
    ),
    SERVICE_UPSERTED: ServiceV1(
        service_id="svc-northshire-camhs",
        version=4,
        organisation_id="org-northshire-camhs",
        name="Northshire CAMHS",
        needs=["SEMH", "ASD"],
        urgencies=["routine", "urgent"],
        clocks=["cypmh_4w", "rtt_18w"],
    ),
}


def _event(event_type: str, payload: EventPayload, source: str, subject: str) -> CloudEvent:
    extensions = {"referralversion": str(payload.version)} if isinstance(payload, ReferralEventV1) else {}
    return CloudEvent(
        type=event_type,
        source=source,
        subject=subject,
        id="7d0f4a52-3c1e-4b8e-9a61-2f5d8c0b9e17",
        time=_AT,
        data=payload.model_dump(mode="json", exclude_none=True),
        extensions=extensions,
    )


# --- headers ---------------------------------------------------------------------------------------


def _ce_headers(event_type: str, subject: str, *, versioned: bool) -> dict[str, Any]:
    required = ["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject", "content-type"]
    properties: dict[str, Any] = {
        "ce_id": {**_TEXT, "description": "Unique event id; consumers de-duplicate on it."},
        "ce_source": {**_TEXT, "description": "Emitting service, e.g. /send/referrals."},
        "ce_type": {"type": "string", "const": event_type},
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_time": {**_TEXT, "format": "date-time", "description": "When the system recorded the change (UTC)."},
        "ce_subject": {**_TEXT, "description": subject},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {**_TEXT, "description": "W3C trace context."},
    }
    if versioned:
        properties["ce_referralversion"] = {
            **_TEXT,
            "pattern": "^[1-9][0-9]*$",
            "description": "The referral's version after the change, as a decimal; equals data.version.",
        }
        required.append("ce_referralversion")
    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary content mode: every context attribute is a ce_ header.",
        "required": required,
        "properties": properties,
    }


def _kafka_headers_example(event: CloudEvent) -> dict[str, str]:
    example = {"ce_" + k: v for k, v in event.to_structured().items() if k not in ("data", "datacontenttype")}
    example["content-type"] = event.datacontenttype
    example["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    return example


_WEBHOOK_HEADERS = {
    "type": "object",
    "description": "Standard Webhooks: verify the signature over `{webhook-id}.{webhook-timestamp}.{body}` with "
    "the endpoint's secret (prefixed whsec_), reject stale timestamps and de-duplicate on webhook-id (a retry "
    "of the same event carries the same id).",
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"],
    "properties": {
        "webhook-id": {**_TEXT, "description": "`msg_` and the event id; the same on every retry of this delivery."},
        "webhook-timestamp": {
            **_TEXT,
            "pattern": "^[0-9]+$",
            "description": "Unix seconds when this attempt was signed.",
        },
        "webhook-signature": {
            **_TEXT,
            "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$",
            "description": "Space-separated `v1,<base64 HMAC-SHA256>` signatures (more than one while a secret rotates).",
        },
        "content-type": {"type": "string", "const": "application/json"},
    },
}


# --- document --------------------------------------------------------------------------------------


def build() -> dict[str, Any]:
    broker = KafkaBroker(
        "kafka:9093",
        protocol="kafka-secure",
        description="Apache Kafka in production: TLS, SASL/SCRAM-SHA-512, one principal per organisation "
        "with ACLs (see docs/consuming-kafka.md).",
    )
    broker.publisher(
        Topics.REFERRAL_EVENTS,
        title=REFERRALS,
        description=(
            "Every change of every referral and of its consent, keyed by referral id so one referral's events stay "
            "in order, and every change of the directory of organisations and services, keyed by their ids."
        ),
        schema=ReferralEventV1,
    )
    broker.publisher(
        Topics.WAITLIST_ALERTS,
        title=ALERTS,
        description=(
            "A statutory or service clock about to breach, or breached, keyed by referral id; and each "
            "referral's clocks whenever they change (clocks_updated), consumed by the referrals service for the "
            "family view's deadline, never delivered as a webhook."
        ),
        schema=ClockAlertV1,
    )
    spec = AsyncAPI(
        broker,
        title="SEND referral events",
        version=VERSION,
        description=(
            "Everything the SEND referral coordination services publish: the Kafka topics and the webhook "
            "deliveries. No personal data: a child is known only by a keyed pseudonymous reference."
        ),
        schema_version="3.0.0",
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    doc["asyncapi"] = "3.1.0"  # FastStream writes 3.0.0; everything here is also 3.1 (the parser checks it)
    doc["servers"] = _servers(doc["servers"])
    doc["components"]["securitySchemes"] = _security_schemes()
    messages: dict[str, Any] = {}
    _kafka_channel(doc, messages, REFERRALS, _referral_messages(doc))
    _kafka_channel(doc, messages, ALERTS, _alert_messages(doc))
    _webhook_channel(doc, messages)
    doc["components"]["messages"] = messages
    for section in ("channels", "operations"):  # FastStream's order depends on how it was imported
        doc[section] = {name: doc[section][name] for name in (REFERRALS, ALERTS, WEBHOOKS)}
    doc["components"]["schemas"] = dict(sorted(doc["components"]["schemas"].items()))
    return doc


def _servers(generated: dict[str, Any]) -> dict[str, Any]:
    (production,) = generated.values()
    production["security"] = [{"$ref": "#/components/securitySchemes/kafkaScram"}]
    return {
        "production": production,
        "development": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "description": "The embedded Kafka-wire broker of `make run` (Tansu); no authentication.",
        },
        "subscriber": {
            "host": "{endpoint}",
            "protocol": "https",
            "description": "An organisation's registered webhook endpoint; deliveries are HTTP POSTs to its URL.",
            "variables": {"endpoint": {"description": "Host (and port) of the registered endpoint URL."}},
            "security": [{"$ref": "#/components/securitySchemes/webhookSignature"}],
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "kafkaScram": {
            "type": "scramSha512",
            "description": "SASL/SCRAM-SHA-512 over TLS. Each consuming organisation has its own principal; "
            "ACLs let it read the public topics with consumer groups prefixed by its organisation id.",
        },
        "webhookSignature": {
            "type": "httpApiKey",
            "name": "webhook-signature",
            "in": "header",
            "description": "Not a key: an HMAC-SHA256 signature per Standard Webhooks, made with the secret "
            "returned once when the endpoint was registered.",
        },
    }


def _kafka_channel(doc: dict[str, Any], messages: dict[str, Any], channel: str, own: dict[str, Any]) -> None:
    messages.update(own)
    doc["channels"][channel]["servers"] = [{"$ref": "#/servers/production"}, {"$ref": "#/servers/development"}]
    doc["channels"][channel]["messages"] = {name: {"$ref": f"#/components/messages/{name}"} for name in own}
    channel_ref = "#/channels/" + channel.replace(" ", "%20")
    doc["operations"][channel]["messages"] = [{"$ref": f"{channel_ref}/messages/{name}"} for name in own]


def _kafka_message(
    doc: dict[str, Any], event_type: str, title: str, payload: EventPayload, *, key: str, subject: str, source: str
) -> dict[str, Any]:
    versioned = isinstance(payload, ReferralEventV1)
    event = _event(event_type, payload, source, subject=str(getattr(payload, key)))
    return {
        "name": event_type,
        "title": title,
        "contentType": "application/json",
        "headers": _ce_headers(event_type, subject, versioned=versioned),
        "payload": {"$ref": _add_schema(doc, type(payload))},
        "bindings": {
            "kafka": {
                "key": {**_TEXT, "description": f"The {key}: one key's events share a partition, in order."},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
        "examples": [
            {
                "name": event_type.removeprefix("uk.send.").replace(".", "-"),
                "headers": _kafka_headers_example(event),
                "payload": dict(event.data),
            }
        ],
    }


def _referral_messages(doc: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for status in ReferralStatus:
        event_type = referral_event_type(status)
        found[event_type] = _kafka_message(
            doc,
            event_type,
            f"Referral {status.value.replace('_', ' ')}",
            _referral_example(status),
            key="referral_id",
            subject="The referral id (also the key).",
            source="/send/referrals",
        )
    for consent in ConsentStatus:
        event_type = consent_event_type(consent)
        found[event_type] = {
            **_kafka_message(
                doc,
                event_type,
                f"Referral consent {consent.value}",
                _consent_example(consent),
                key="referral_id",
                subject="The referral id (also the key).",
                source="/send/referrals",
            ),
            "description": _CONSENT_DESCRIPTIONS[consent] + " Consent events have their own consent_version and "
            "leave the referral's version (and ce_referralversion) alone; they carry codes, never names or notes.",
        }
    for event_type, (title, example, description) in _SIGNPOST_EXAMPLES.items():
        found[event_type] = {
            **_kafka_message(
                doc,
                event_type,
                title,
                example,
                key="referral_id",
                subject="The referral id (also the key).",
                source="/send/referrals",
            ),
            "description": description,
        }
    for event_type, example in _DIRECTORY_EXAMPLES.items():
        key = "organisation_id" if isinstance(example, OrganisationV1) else "service_id"
        found[event_type] = _kafka_message(
            doc,
            event_type,
            (type(example).__doc__ or event_type).split(":")[0].removeprefix("Data of "),
            example,
            key=key,
            subject=f"The {key.replace('_', ' ')} (also the key).",
            source="/send/referrals",
        )
    return found


def _alert_messages(doc: dict[str, Any]) -> dict[str, Any]:
    titles = {CLOCK_BREACH_IMMINENT: "Clock breach imminent", CLOCK_BREACHED: "Clock breached"}
    return {
        event_type: _kafka_message(
            doc,
            event_type,
            title,
            _alert_example(event_type),
            key="referral_id",
            subject="The referral id (also the key).",
            source="/send/waitlists",
        )
        for event_type, title in titles.items()
    } | {
        CLOCKS_UPDATED: {
            **_kafka_message(
                doc,
                CLOCKS_UPDATED,
                "Referral clocks updated",
                _CLOCKS_EXAMPLE,
                key="referral_id",
                subject="The referral id (also the key).",
                source="/send/waitlists",
            ),
            "description": (
                "A referral's clocks as waitlists derived them on its newest change, sent when they differ from "
                "those sent last; the newest referral_version wins. Consumed by the referrals service (consumer "
                "group referrals-clocks), which shows the family the deadline that applies; not a webhook."
            ),
        },
        WAIT_ESTIMATE: {
            **_kafka_message(
                doc,
                WAIT_ESTIMATE,
                "Service wait estimate",
                _ESTIMATE_EXAMPLE,
                key="service_id",
                subject="The service id (also the key).",
                source="/send/waitlists",
            ),
            "description": (
                "A service's predicted wait (Kaplan-Meier over the referrals submitted in the window before as_of: "
                "median and 90th percentile days to support starting and to the first clock's stop), worked out at "
                "most daily and sent when it changes; below the threshold enough_data is false and every figure "
                "null. Consumed by the referrals service, which shows it to schools and families; not a webhook."
            ),
        },
    }


def _webhook_channel(doc: dict[str, Any], messages: dict[str, Any]) -> None:
    envelope = AnyStructuredEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    envelope["title"] = "WebhookEnvelope"
    doc["components"]["schemas"]["WebhookEnvelope"] = envelope
    own = {}
    kafka_messages = {
        name: m
        for name, m in messages.items()
        if name.startswith(("uk.send.referral.", "uk.send.waitlist.")) and name not in NOT_DELIVERED_AS_WEBHOOKS
    }
    for event_type, kafka in kafka_messages.items():
        own[f"webhook.{event_type}"] = _webhook_message(
            event_type, kafka["title"], kafka["payload"], kafka["examples"][0]
        )
    ping = _event(WEBHOOK_PING, WebhookPingV1(endpoint_id="ep-3f2b9c1d"), "/send/notifications", "ep-3f2b9c1d")
    own[f"webhook.{WEBHOOK_PING}"] = _webhook_message(
        WEBHOOK_PING,
        "Ping (sent on request to one endpoint, whatever it subscribes to)",
        {"$ref": _add_schema(doc, WebhookPingV1)},
        {"name": "webhook-ping", "payload": dict(ping.data)},
        event=ping,
    )
    messages.update(own)
    doc["channels"][WEBHOOKS] = {
        "address": None,
        "title": WEBHOOKS,
        "description": "HTTP POSTs to each subscribed endpoint of the organisations concerned (the referrer and "
        "the receiving organisation; while the family's consent is withdrawn, the receiving organisation only, "
        "but for the withdrawal itself: see docs/consent.md), retried with exponential backoff over hours; an "
        "endpoint that keeps failing or answers 410 Gone is disabled.",
        "servers": [{"$ref": "#/servers/subscriber"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in own},
        "bindings": {"http": {"bindingVersion": "0.3.0"}},
    }
    doc["operations"][WEBHOOKS] = {
        "action": "send",
        "channel": {"$ref": "#/channels/" + WEBHOOKS.replace(" ", "%20")},
        "summary": "Deliver an event to a subscribed webhook endpoint.",
        "bindings": {"http": {"method": "POST", "bindingVersion": "0.3.0"}},
        "messages": [{"$ref": f"#/channels/webhook%20deliveries/messages/{name}"} for name in own],
    }


def _webhook_message(
    event_type: str,
    title: str,
    payload_ref: dict[str, Any],
    kafka_example: dict[str, Any],
    *,
    event: CloudEvent | None = None,
) -> dict[str, Any]:
    if event is None:
        headers = kafka_example["headers"]
        event = CloudEvent(
            type=event_type,
            source=headers["ce_source"],
            subject=headers["ce_subject"],
            id=headers["ce_id"],
            time=_AT,
            data=kafka_example["payload"],
            extensions={"referralversion": headers["ce_referralversion"]} if "ce_referralversion" in headers else {},
        )
    body = event.to_structured()
    if event_type.startswith("uk.send.referral."):
        body["referrallink"] = f"https://referrals.example.org/v1/referrals/{event.subject}"
    return {
        "name": f"webhook.{event_type}",
        "title": f"{title} (webhook)",
        "contentType": "application/json",
        "headers": _WEBHOOK_HEADERS,
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/WebhookEnvelope"},
                {
                    "type": "object",
                    "properties": {"type": {"type": "string", "const": event_type}, "data": payload_ref},
                },
            ]
        },
        "examples": [
            {
                "name": kafka_example["name"],
                "headers": {
                    "webhook-id": f"msg_{event.id}",
                    "webhook-timestamp": str(int(_AT.timestamp())),
                    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                    "content-type": "application/json",
                },
                "payload": body,
            }
        ],
    }


def _add_schema(doc: dict[str, Any], model: type[EventPayload]) -> str:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        doc["components"]["schemas"].setdefault(name, definition)
    doc["components"]["schemas"][model.__name__] = schema
    return f"#/components/schemas/{model.__name__}"


def render() -> str:
    return yaml.safe_dump(build(), sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    sys.stdout.write(render())
