"""Wires settings, adapters and entrypoints into the running waitlists service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.auth import Role
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import REFERRAL_EVENT_TYPES
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.telemetry import setup_logging, setup_tracing
from send_shared.web.signin import signin_router
from waitlists.adapters.orm import inbox, outbox, positions
from waitlists.adapters.unit_of_work import JoinedUnitOfWork, SqlUnitOfWork
from waitlists.domain.waits import WaitPolicy
from waitlists.entrypoints import dashboard
from waitlists.entrypoints.consumers import on_referral_event
from waitlists.entrypoints.headers import DASHBOARD_POLICY
from waitlists.entrypoints.prometheus import run_refresher
from waitlists.entrypoints.routers import ROUTERS
from waitlists.service_layer.alerting import run_alert_scheduler
from waitlists.service_layer.dashboard import signin_organisations
from waitlists.service_layer.projection import CONSUMER_GROUP, EVENT_SOURCE, backfill_facts, refresh_marked_facts
from waitlists.service_layer.reporting import organisation_known
from waitlists.service_layer.unit_of_work import UnitOfWorkFactory
from waitlists.service_layer.waits import run_estimate_scheduler
from waitlists.settings import WaitlistsSettings


async def handle_referral_event(event: CloudEvent, session: AsyncSession) -> None:
    """The consumer's handler, in the consumer runtime's transaction."""
    await on_referral_event(event, JoinedUnitOfWork(session))


async def read_referrals_ahead(events: Sequence[CloudEvent], session: AsyncSession) -> None:
    """The consumer's step before a batch's handlers: the referrals its referral events fold into, read in one
    statement instead of one each."""
    referral_ids = {event.data["referral_id"] for event in events
                    if event.type in REFERRAL_EVENT_TYPES and isinstance(event.data.get("referral_id"), str)}  # fmt: skip
    if referral_ids:
        await JoinedUnitOfWork(session).referrals.read_ahead(referral_ids)


async def refresh_facts(session: AsyncSession, *, source: str = EVENT_SOURCE) -> None:
    """The consumer's step before each commit: the facts of what the transaction's events touched, and the
    clocks of theirs that changed told (from ``source``)."""
    uow = JoinedUnitOfWork(session)
    await refresh_marked_facts(uow, source=source)
    await uow.referrals.write_saved()  # what no read of the facts' refresh wrote already


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
                CONSUMER_GROUP,
                [Topics.REFERRAL_EVENTS],
                handle_referral_event,
                inbox,
                positions,
                partial(refresh_facts, source=settings.event_source),
                before_batch=read_referrals_ahead,
            )
        ],
    )
    uows: UnitOfWorkFactory = partial(SqlUnitOfWork, runtime.sessions)

    async def alert_scheduler(stop: asyncio.Event) -> None:
        await run_alert_scheduler(uows, stop, interval=settings.alert_scan_seconds,
                                  lead_days=settings.alert_lead_days, source=settings.event_source)  # fmt: skip

    policy = WaitPolicy(settings.wait_window_weeks, settings.wait_min_children)

    async def wait_estimates(stop: asyncio.Event) -> None:
        await run_estimate_scheduler(uows, stop, interval=settings.wait_estimate_scan_seconds, policy=policy,
                                     source=settings.event_source)  # fmt: skip

    async def gauges(stop: asyncio.Event) -> None:
        await run_refresher(uows, stop, interval=settings.gauge_refresh_seconds)

    async def backfill() -> None:
        await backfill_facts(uows)

    async def directory_member(organisation_id: str) -> bool:
        return await organisation_known(organisation_id, uows())

    async def who_may_sign_in() -> list[tuple[str, str]]:
        return await signin_organisations(uows())

    runtime.startup.append(backfill)
    runtime.workers.append(("alert-scheduler", alert_scheduler))
    runtime.workers.append(("gauge-refresher", gauges))
    runtime.workers.append(("wait-estimates", wait_estimates))
    app = create_app(
        runtime,
        title="SEND waitlists",
        description="Waiting times, statutory clocks and handoff gaps, built from referral events. No personal data.",
        page_policies={"/dashboard": DASHBOARD_POLICY},
    )
    app.state.unit_of_work = uows
    app.state.wait_policy = policy
    app.state.organisation_lookup = directory_member
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(signin_router(settings, who_may_sign_in, landing="/dashboard/", roles=(Role.OPS, Role.ADMIN)))
    app.mount("/dashboard", dashboard.page(), name="dashboard")
    app.state.runtime = runtime
    return app
