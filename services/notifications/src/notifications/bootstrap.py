"""Wires settings, adapters and entrypoints into the running notifications service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select

from notifications.adapters.mailer import SmtpMailer
from notifications.adapters.orm import contacts, endpoints, inbox, positions
from notifications.adapters.webhook_client import WebhookClient
from notifications.domain.delivery import REQUEST_TIMEOUT_SECONDS
from notifications.entrypoints.api import build_router
from notifications.entrypoints.consumers import event_handler
from notifications.service_layer.dispatcher import Dispatcher
from notifications.service_layer.endpoints import EndpointService, UrlPolicy
from notifications.service_layer.fanout import HeldEvents
from notifications.service_layer.mail import MailWorker, endpoint_disabled_message
from notifications.settings import NotificationsSettings
from send_shared.auth import TokenVerifier
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.telemetry import setup_logging, setup_tracing

CONSUMER_GROUP = "notifications"


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    s = settings or NotificationsSettings()
    setup_logging(s.service_name, s.log_level)
    setup_tracing(s.service_name, s.otel_exporter_otlp_endpoint)
    production = s.environment == "production"
    policy = UrlPolicy(require_https=production, allow_private=s.webhooks_allow_private_targets and not production)
    runtime = ServiceRuntime(s)
    mailer = SmtpMailer(
        host=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None, starttls=s.smtp_starttls,
        timeout=s.smtp_timeout_seconds,
    )  # fmt: skip
    mail = MailWorker(runtime.sessions, mailer, mail_from=s.mail_from, referral_url=s.referral_url_template)

    async def tell_owner(endpoint_id: str, organisation_id: str, reason: str) -> None:
        async with runtime.sessions() as session:
            to = (
                await session.execute(select(contacts.c.emails).where(contacts.c.organisation_id == organisation_id))
            ).scalar()
            url = (await session.execute(select(endpoints.c.url).where(endpoints.c.id == endpoint_id))).scalar()
        if to and s.email_enabled:
            await mail.send_now(
                endpoint_disabled_message(endpoint_url=str(url), reason=reason, mail_from=s.mail_from, to=list(to))
            )

    dispatcher = Dispatcher(
        runtime.sessions,
        lambda: WebhookClient(require_https=policy.require_https, allow_private=policy.allow_private),
        poll_interval=s.webhook_poll_ms / 1000,
        on_disabled=tell_owner,
        stuck_after=max(s.stuck_after_seconds, 2 * REQUEST_TIMEOUT_SECONDS),
    )
    handler = event_handler(referral_link_template=s.referral_url_template, after=dispatcher.wake.set)
    runtime.consumers = [
        ConsumerSpec(CONSUMER_GROUP, [Topics.REFERRAL_EVENTS, Topics.WAITLIST_ALERTS], handler, inbox, positions)
    ]
    held = HeldEvents(
        runtime.sessions,
        hold_limit=timedelta(seconds=s.hold_early_events_seconds),
        referral_link_template=s.referral_url_template,
        after=dispatcher.wake.set,
    )
    runtime.workers.append(("webhook-dispatcher", dispatcher.run))
    runtime.workers.append(("held-events", held.run))
    if s.run_workers:
        runtime.health.register("webhook dispatcher", dispatcher.status)
        runtime.health.register("event order", held.status)
    if s.email_enabled:
        runtime.workers.append(("mail-worker", mail.run))
    app = create_app(
        runtime,
        title="SEND notifications",
        description="Agency subscriptions, signed webhooks (Standard Webhooks) and email about the referrals that concern them.",
    )
    service = EndpointService(runtime.sessions, policy, secret_grace=timedelta(hours=s.webhook_secret_grace_hours))
    app.include_router(
        build_router(
            endpoints_service=service, sessions=runtime.sessions, verifier=TokenVerifier(s), event_source=s.event_source
        )
    )
    app.state.runtime = runtime
    app.state.dispatcher = dispatcher
    return app
