"""What a consumer transaction read ahead for its batch's events (``read_ahead`` of the referral order and of the
endpoints), and what it writes at its end, kept on the session: each event sees the session through repositories
of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

# Referral id -> (the last version sent on, the consent in force), kept as the transaction writes the version.
LAST_SENT_AND_CONSENT = "notifications.read_ahead.last_sent_and_consent"
# Referral id -> the last version sent on, set in this transaction and written at its end (``write_kept``).
UNWRITTEN_VERSIONS = "notifications.unwritten_versions"
# Organisation id -> its endpoints that are not disabled; the consumer changes no endpoint.
SUBSCRIBED = "notifications.read_ahead.subscribed"
# Organisation id -> its email preferences, None for the defaults; the consumer changes none.
PREFERENCES = "notifications.read_ahead.preferences"


def kept(session: AsyncSession, key: str) -> dict[str, Any]:
    found: dict[str, Any] = session.info.setdefault(key, {})
    return found


def forget_referral(session: AsyncSession, referral_id: str) -> None:
    """The referral's consent in force changed: read it again."""
    session.info.get(LAST_SENT_AND_CONSENT, {}).pop(referral_id, None)
