"""What the routes depend on, as module-level dependencies that tests can swap (``app.dependency_overrides``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Path, Request

from notifications.service_layer.endpoints import UrlPolicy
from notifications.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from notifications.settings import NotificationsSettings
from send_shared.auth import Principal, Role, require_known_roles

MAX_DB_ID = 2**63 - 1  # bigint: a larger id is refused here rather than overflow in the database
# Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
# dependency per request (it cost a sixth of a submission's time before they were made async).


async def settings(request: Request) -> NotificationsSettings:
    """The app's settings (``app.state.settings``, set by ``create_app``)."""
    found: NotificationsSettings = request.app.state.settings
    return found


Settings = Annotated[NotificationsSettings, Depends(settings)]


async def unit_of_work(request: Request) -> UnitOfWork:
    """A unit of work from the app's factory (``app.state.unit_of_work``, set by the bootstrap)."""
    factory: UnitOfWorkFactory = request.app.state.unit_of_work
    return factory()


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


def url_policy_of(config: NotificationsSettings) -> UrlPolicy:
    """Production calls only https URLs on public addresses; development may allow private ones."""
    production = config.environment == "production"
    return UrlPolicy(require_https=production, allow_private=config.webhooks_allow_private_targets and not production)


async def url_policy(config: Settings) -> UrlPolicy:
    return url_policy_of(config)


CheckedUrls = Annotated[UrlPolicy, Depends(url_policy)]


async def secret_grace(config: Settings) -> timedelta:
    return timedelta(hours=config.webhook_secret_grace_hours)


SecretGrace = Annotated[timedelta, Depends(secret_grace)]


async def dispatcher_wake(request: Request) -> Callable[[], None]:
    """Wakes the app's webhook dispatcher (``app.state.dispatcher``) to look for due deliveries now."""
    wake: Callable[[], None] = request.app.state.dispatcher.wake.set
    return wake


WakeDispatcher = Annotated[Callable[[], None], Depends(dispatcher_wake)]

# ops see aggregates elsewhere and subscribe to nothing here; the organisation must be in the directory
Member = Annotated[Principal, Depends(require_known_roles(Role.REFERRER, Role.RECEIVER, Role.ADMIN))]
EndpointId = Annotated[
    str,
    Path(
        max_length=40,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The endpoint's id (`ep_...`), as returned when it was registered.",
    ),
]
