"""Wires settings, adapters and entrypoints into the running notifications service."""

from __future__ import annotations

from fastapi import FastAPI

from notifications.adapters.orm import inbox
from notifications.entrypoints.consumers import on_event
from notifications.settings import NotificationsSettings
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.telemetry import setup_logging, setup_tracing

CONSUMER_GROUP = "notifications"


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    runtime = ServiceRuntime(
        settings,
        consumers=[ConsumerSpec(CONSUMER_GROUP, [Topics.REFERRAL_EVENTS, Topics.WAITLIST_ALERTS], on_event, inbox)],
    )
    app = create_app(
        runtime,
        title="SEND notifications",
        description="Agency subscriptions, signed webhooks and email about the referrals that concern them.",
    )
    app.state.runtime = runtime
    return app
