"""The family's consent to share a referral, as notifications learns it from the consent events. Pure Python.

Consent events carry their own ``consent_version`` (1, 2, ...), not the referral's version: the newest one is
the consent in force; a repeat or an older one that comes late changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from send_shared.events.schemas import ConsentStatus


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The consent in force for one referral."""

    referral_id: str
    version: int
    status: ConsentStatus

    @property
    def withdrawn(self) -> bool:
        return self.status is ConsentStatus.WITHDRAWN


def supersedes(arriving: ConsentState, current: ConsentState | None) -> bool:
    """Whether ``arriving`` replaces ``current``: only a newer consent version does."""
    return current is None or arriving.version > current.version
