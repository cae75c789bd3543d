"""Who asks: the authenticated caller as the use cases see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    organisation_id: str
    role: str
    subject: str


@dataclass(frozen=True)
class FamilyCaller:
    """The family, through their private link to the family view (issue 17): they act on their own child's referrals
    only (``child_ref``), never as an organisation."""

    link_id: str
    child_ref: str

    @property
    def subject(self) -> str:
        return f"family-link:{self.link_id}"


ConsentCaller = Caller | FamilyCaller
"""Who may record consent: an organisation's role (the referrer or the receiver of the referral) or the family."""
