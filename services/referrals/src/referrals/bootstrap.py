"""Wires settings, adapters and entrypoints into the running referrals service."""

from __future__ import annotations

import logging
from functools import partial

from fastapi import FastAPI

from referrals.adapters.orm import inbox, outbox, positions, store_replay_requests
from referrals.entrypoints.admin_api import build_admin_router
from referrals.entrypoints.api import build_router
from referrals.service_layer.directory import seed_if_empty
from referrals.service_layer.unit_of_work import SqlUnitOfWork
from referrals.settings import ReferralsSettings
from send_shared.auth import TokenVerifier
from send_shared.events.topics import Topics
from send_shared.service import ConsumerSpec, ServiceRuntime, create_app
from send_shared.store_replay import StoreReplayServer, request_topic
from send_shared.telemetry import setup_logging, setup_tracing

log = logging.getLogger(__name__)
STORE_REPLAY_GROUP = "referrals-store-replay"


def build_app(settings: ReferralsSettings | None = None) -> FastAPI:
    settings = settings or ReferralsSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    runtime = ServiceRuntime(settings, outbox=outbox, owned_topics=[Topics.REFERRAL_EVENTS])
    make_uow = partial(SqlUnitOfWork, runtime.sessions, event_source=settings.event_source)

    async def seed_directory() -> None:
        if settings.seed_directory and (added := await seed_if_empty(make_uow(), source=settings.event_source)):
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
    verifier = TokenVerifier(settings)
    app.include_router(
        build_router(
            make_uow=make_uow, verifier=verifier, child_ref_key=settings.child_ref_key.get_secret_value().encode()
        )
    )
    app.include_router(
        build_admin_router(
            make_uow=make_uow, sessions=runtime.sessions, verifier=verifier, event_source=settings.event_source
        )
    )
    app.state.runtime = runtime
    return app
