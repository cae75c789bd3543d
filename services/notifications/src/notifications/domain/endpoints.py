"""A webhook endpoint as its organisation registered it: where it is, what it wants, how it signs. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notifications.domain.subscriptions import Endpoint, EndpointStatus


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What an organisation asks for when it registers or changes an endpoint."""

    url: str
    event_types: tuple[str, ...]
    service_ids: tuple[str, ...]
    urgencies: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class RegisteredEndpoint:
    id: str
    organisation_id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    service_ids: tuple[str, ...]
    urgencies: tuple[str, ...]
    status: EndpointStatus
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def subscription(self) -> Endpoint:
        return Endpoint(
            self.id, self.organisation_id, self.url, self.event_types, self.service_ids, self.urgencies, self.status
        )

    def secrets_in_use(self, now: datetime) -> list[str]:
        """The current secret, and the one it replaced while that one's grace lasts (both sign)."""
        found = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires and expires > now:
            found.append(self.previous_secret)
        return found
