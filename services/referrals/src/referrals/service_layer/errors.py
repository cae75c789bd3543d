"""Why a use case refused a request, besides the domain's own rules (referrals.domain.model)."""

from __future__ import annotations

from referrals.domain.errors import DomainError
from referrals.domain.model import MissingDetail


class NotFound(DomainError):
    """No such referral, or not one the caller may see (the two are indistinguishable on purpose)."""


class NotYourReferral(DomainError):
    """The caller's organisation is a party to the referral, but the caller's role may not read it: only the
    referring organisation's referrer role and the receiving organisation's receiver role see personal details."""


class UnknownService(MissingDetail):
    def __init__(self, field: str, service_id: str) -> None:
        super().__init__(field, "known_service", f"no service {service_id!r} in the directory")


class VersionMismatch(DomainError):
    def __init__(self, current: int) -> None:
        super().__init__(f"the referral is at version {current}")
        self.current = current
