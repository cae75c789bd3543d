"""Which emails an organisation's contacts get: read and change its preferences."""

from __future__ import annotations

from datetime import UTC, datetime

from notifications.domain.email_preferences import EmailPreferences
from notifications.service_layer.unit_of_work import UnitOfWork


async def preferences_of(uow: UnitOfWork, organisation_id: str) -> EmailPreferences:
    """The organisation's choices, or the defaults while it has made none."""
    async with uow:
        chosen = await uow.preferences.of([organisation_id])
    return chosen.get(organisation_id, EmailPreferences())


async def set_preferences(uow: UnitOfWork, organisation_id: str, preferences: EmailPreferences) -> EmailPreferences:
    """Applies to emails caused from now on; new referrals already waiting for a digest are dropped with it
    if new-referral emails are turned off."""
    async with uow:
        await uow.preferences.set(organisation_id, preferences, datetime.now(UTC))
        await uow.commit()
    return preferences
