"""Wires settings, adapters and entrypoints into the running notifications service."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from notifications.adapters.orm import inbox, positions
from notifications.adapters.unit_of_work import SqlUnitOfWork
from notifications.adapters.webhook_client import WebhookClient
from notifications.domain.delivery import REQUEST_TIMEOUT_SECONDS
from notifications.domain.digest import DigestSchedule
from notifications.entrypoints.consumers import batch_reader, batch_writer, event_handler
from notifications.entrypoints.dependencies import url_policy_of
from notifications.entrypoints.errors import install_error_handlers
from notifications.entrypoints.routers import ROUTERS
from notifications.entrypoints.webhook_payloads import document_webhooks
from notifications.service_layer.directory import directory_member
from notifications.service_layer.dispatcher import Dispatcher
from notifications.service_layer.fanout import CONSUMER_GROUP, HeldEvents
from notifications.service_layer.mail import MailWorker
from notifications.settings import NotificationsSettings
from send_shared.consumer.wake import WakeAfterCommit
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.smtp import SmtpMailer
from send_shared.telemetry import setup_logging, setup_tracing


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    s = settings or NotificationsSettings()
    setup_logging(s.service_name, s.log_level)
    setup_tracing(s.service_name, s.otel_exporter_otlp_endpoint)
    policy = url_policy_of(s)
    runtime = ServiceRuntime(s)
    unit_of_work = partial(SqlUnitOfWork, runtime.sessions)
    mailer = SmtpMailer(
        host=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None, starttls=s.smtp_starttls,
        timeout=s.smtp_timeout_seconds,
    )  # fmt: skip
    digest = DigestSchedule(s.new_referral_digest_time, ZoneInfo(s.new_referral_digest_timezone))
    mail = MailWorker(
        unit_of_work, mailer, mail_from=s.mail_from, referral_url=s.referral_page_url_template, digest=digest
    )
    dispatcher = Dispatcher(
        unit_of_work,
        lambda: WebhookClient(require_https=policy.require_https, allow_private=policy.allow_private),
        poll_interval=s.webhook_poll_ms / 1000,
        on_disabled=mail.tell_endpoint_disabled if s.email_enabled else None,
        stuck_after=max(s.stuck_after_seconds, 2 * REQUEST_TIMEOUT_SECONDS),
    )
    deliveries_queued = WakeAfterCommit(dispatcher.wake.set)
    handler = event_handler(
        unit_of_work_in=SqlUnitOfWork.within,
        referral_link_template=s.referral_url_template,
        emails=s.email_enabled,
        after=deliveries_queued.queued,
    )
    runtime.consumers = [
        ConsumerSpec(
            CONSUMER_GROUP,
            [Topics.REFERRAL_EVENTS, Topics.WAITLIST_ALERTS],
            handler,
            inbox,
            positions,
            before_commit=batch_writer(unit_of_work_in=SqlUnitOfWork.within),
            after_commit=deliveries_queued.committed,
            before_batch=batch_reader(unit_of_work_in=SqlUnitOfWork.within),
        )
    ]
    held = HeldEvents(
        unit_of_work,
        hold_limit=timedelta(seconds=s.hold_early_events_seconds),
        referral_link_template=s.referral_url_template,
        emails=s.email_enabled,
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
    install_error_handlers(app)
    document_webhooks(app)
    for router in ROUTERS:
        app.include_router(router)
    app.state.unit_of_work = unit_of_work
    app.state.organisation_lookup = directory_member(unit_of_work)
    app.state.runtime = runtime
    app.state.dispatcher = dispatcher
    return app
