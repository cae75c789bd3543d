"""Wires settings, adapters and entrypoints into the running referrals service."""

from __future__ import annotations

import logging
from functools import partial

from fastapi import FastAPI

from referrals.adapters.orm import inbox, outbox, positions, store_replay_requests
from referrals.adapters.seed import seed_file
from referrals.adapters.unit_of_work import SqlUnitOfWork
from referrals.entrypoints.routers import ROUTERS
from referrals.entrypoints.routers.pages import READERS
from referrals.service_layer.directory import all_organisations, is_registered, seed_if_empty
from referrals.service_layer.unit_of_work import UnitOfWorkFactory
from referrals.settings import ReferralsSettings
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.store_replay import StoreReplayServer, request_topic
from send_shared.telemetry import setup_logging, setup_tracing
from send_shared.web.signin import signin_router

log = logging.getLogger(__name__)
STORE_REPLAY_GROUP = "referrals-store-replay"


def build_app(settings: ReferralsSettings | None = None) -> FastAPI:
    settings = settings or ReferralsSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    runtime = ServiceRuntime(settings, outbox=outbox, owned_topics=[Topics.REFERRAL_EVENTS])
    make_uow: UnitOfWorkFactory = partial(SqlUnitOfWork, runtime.sessions, event_source=settings.event_source)

    async def seed_directory() -> None:
        if not settings.seed_directory:
            return
        if added := await seed_if_empty(*seed_file(), make_uow(), source=settings.event_source):
            log.info("directory seeded", extra={"entries": added})

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
            fetch_max_wait_ms=500,  # requests are rare and a second more does not matter
        )
    ]
    runtime.workers.append(("store-replay", replay.run))
    app = create_app(
        runtime,
        title="SEND referrals",
        description="Submit, follow and move referrals of children with SEND between organisations.",
        body_limits={"/v1/referrals/import": settings.max_import_bytes},
    )

    async def organisation_lookup(organisation_id: str) -> bool:
        return await is_registered(organisation_id, make_uow())

    async def who_may_sign_in() -> list[tuple[str, str]]:
        return [(o.id, o.name) for o in await all_organisations(make_uow())]

    app.state.uow_factory = make_uow
    app.state.organisation_lookup = organisation_lookup
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(signin_router(settings, who_may_sign_in, landing="/referrals/", roles=READERS))
    app.state.runtime = runtime
    return app
