"""Who may see one referral's details here: the rule the referrals service applies to reading the referral.
Pure Python."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parties:
    """The two organisations a referral is between, as its events name them."""

    referrer_org_id: str
    receiving_org_id: str

    def include(self, organisation_id: str) -> bool:
        """Only the referrer and the receiving service's organisation see a referral; anyone else is told it
        does not exist (a 404, not a 403, so that its existence is not given away)."""
        return organisation_id in (self.referrer_org_id, self.receiving_org_id)
