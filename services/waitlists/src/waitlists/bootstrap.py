"""Wires settings, adapters and entrypoints into the running waitlists service."""

from __future__ import annotations

import asyncio
from functools import partial

from fastapi import FastAPI

from send_shared.auth import TokenVerifier
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.telemetry import setup_logging, setup_tracing
from waitlists.adapters import facts
from waitlists.adapters.orm import inbox, outbox, positions
from waitlists.entrypoints.api import build_router
from waitlists.entrypoints.consumers import CONSUMER_GROUP, on_referral_event
from waitlists.entrypoints.dashboard_api import build_dashboard_router, dashboard_page
from waitlists.entrypoints.headers import DASHBOARD_POLICY
from waitlists.entrypoints.prometheus import run_refresher
from waitlists.service_layer.alerting import run_alert_scheduler
from waitlists.service_layer.rebuild import backfill_facts
from waitlists.settings import WaitlistsSettings


def build_app(settings: WaitlistsSettings | None = None) -> FastAPI:
    settings = settings or WaitlistsSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    runtime = ServiceRuntime(
        settings,
        outbox=outbox,
        owned_topics=[Topics.WAITLIST_ALERTS],
        consumers=[
            ConsumerSpec(
                CONSUMER_GROUP, [Topics.REFERRAL_EVENTS], on_referral_event, inbox, positions, facts.refresh_marked
            )
        ],
    )
    scheduler = partial(
        run_alert_scheduler,
        runtime.sessions,
        interval=settings.alert_scan_seconds,
        lead_days=settings.alert_lead_days,
        source=settings.event_source,
    )

    async def alert_scheduler(stop: asyncio.Event) -> None:
        await scheduler(stop)

    async def gauges(stop: asyncio.Event) -> None:
        await run_refresher(runtime.sessions, stop, interval=settings.gauge_refresh_seconds)

    async def backfill() -> None:
        await backfill_facts(runtime.sessions)

    runtime.startup.append(backfill)
    runtime.workers.append(("alert-scheduler", alert_scheduler))
    runtime.workers.append(("gauge-refresher", gauges))
    app = create_app(
        runtime,
        title="SEND waitlists",
        description="Waiting times, statutory clocks and handoff gaps, built from referral events. No personal data.",
        page_policies={"/dashboard": DASHBOARD_POLICY},
    )
    verifier = TokenVerifier(settings)
    app.include_router(build_router(sessions=runtime.sessions, verifier=verifier))
    app.include_router(build_dashboard_router(sessions=runtime.sessions, verifier=verifier))
    app.mount("/dashboard", dashboard_page(), name="dashboard")
    app.state.runtime = runtime
    return app
