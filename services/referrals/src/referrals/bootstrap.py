"""Wires settings, adapters and entrypoints into the running referrals service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from referrals.adapters.clocks_repository import SqlReferralClocksRepository
from referrals.adapters.interim_repository import SqlInterimRepository
from referrals.adapters.orm import inbox, outbox, positions, store_replay_requests
from referrals.adapters.referral_repository import SqlReferralRepository
from referrals.adapters.seed import seed_file, seed_offers
from referrals.adapters.unit_of_work import SqlUnitOfWork
from referrals.entrypoints.consumers import CLOCKS_GROUP, Signposting, on_waitlists_event
from referrals.entrypoints.routers import ROUTERS
from referrals.entrypoints.routers.pages import READERS
from referrals.service_layer.directory import KnownOrganisations, all_organisations, seed_if_empty
from referrals.service_layer.family_mail import FamilyLinkMailer
from referrals.service_layer.interim import seed_offers_if_empty
from referrals.service_layer.unit_of_work import UnitOfWorkFactory
from referrals.settings import ReferralsSettings
from send_shared.events.envelope import CloudEvent
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.smtp import SmtpMailer
from send_shared.store_replay import StoreReplayServer, request_topic
from send_shared.telemetry import setup_logging, setup_tracing
from send_shared.web.signin import signin_router

log = logging.getLogger(__name__)
STORE_REPLAY_GROUP = "referrals-store-replay"


def waitlists_event_handler(source: str) -> Callable[[CloudEvent, AsyncSession], Awaitable[None]]:
    """The clocks consumer's handler, in the consumer runtime's transaction: a signpost it makes is published
    through the outbox in that transaction."""
    writer = OutboxWriter(outbox)

    async def handle(event: CloudEvent, session: AsyncSession) -> None:
        async def publish(signposted: CloudEvent, key: str) -> None:
            await writer.add(session, signposted, topic=Topics.REFERRAL_EVENTS, key=key)

        signposting = Signposting(SqlReferralRepository(session), SqlInterimRepository(session), publish, source)
        await on_waitlists_event(event, SqlReferralClocksRepository(session), signposting)

    return handle


def build_app(settings: ReferralsSettings | None = None) -> FastAPI:
    settings = settings or ReferralsSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    runtime = ServiceRuntime(settings, outbox=outbox, owned_topics=[Topics.REFERRAL_EVENTS])
    make_uow: UnitOfWorkFactory = partial(SqlUnitOfWork, runtime.engine, event_source=settings.event_source)

    async def seed_directory() -> None:
        if not settings.seed_directory:
            return
        if added := await seed_if_empty(*seed_file(), make_uow(), source=settings.event_source):
            log.info("directory seeded", extra={"entries": added})
        if added := await seed_offers_if_empty(seed_offers(), make_uow()):
            log.info("interim offers seeded", extra={"entries": added})

    runtime.startup.append(seed_directory)
    replay = StoreReplayServer(
        runtime.engine,
        outbox,
        store_replay_requests,
        runtime.link,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=[Topics.REFERRAL_EVENTS],
        source=settings.event_source,
    )
    runtime.consumers = [
        ConsumerSpec(
            STORE_REPLAY_GROUP,
            [request_topic(settings.service_name)],
            replay.record,
            inbox,
            positions,
            after_commit=replay.wake.set,
            fetch_max_wait_ms=500,  # requests are rare and a second more does not matter
        ),
        # The clocks waitlists tells of each referral: the family view's deadline.
        # Each service's predicted wait, and signposts when a clock nears breach.
        ConsumerSpec(
            CLOCKS_GROUP, [Topics.WAITLIST_ALERTS], waitlists_event_handler(settings.event_source), inbox, positions
        ),
    ]
    runtime.workers.append(("store-replay", replay.run))
    if settings.family_email_enabled:
        family_mail = FamilyLinkMailer(
            make_uow,
            SmtpMailer(
                host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls, timeout=settings.smtp_timeout_seconds,
            ),
            url_template=settings.family_view_url_template,
            mail_from=settings.mail_from,
        )  # fmt: skip
        runtime.workers.append(("family-link-emails", family_mail.run))
        if settings.run_workers:
            runtime.health.register("family link emails", family_mail.status)
    app = create_app(
        runtime,
        title="SEND referrals",
        description="Submit, follow and move referrals of children with SEND between organisations.",
        body_limits={"/v1/referrals/import": settings.max_import_bytes},
        untraced_paths=("/family/",),
    )

    async def who_may_sign_in() -> list[tuple[str, str]]:
        return [(o.id, o.name) for o in await all_organisations(make_uow())]

    app.state.uow_factory = make_uow
    app.state.organisation_lookup = KnownOrganisations(make_uow)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(signin_router(settings, who_may_sign_in, landing="/referrals/", roles=READERS))
    app.state.runtime = runtime
    return app
