"""Which emails an organisation's contacts get."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from notifications.domain.email_preferences import EmailPreferences, NewReferralEmails
from notifications.entrypoints.dependencies import Member, Uow
from notifications.service_layer.preferences import preferences_of, set_preferences

router = APIRouter(prefix="/v1", tags=["notifications"])

_NEW_REFERRALS = (
    "Emails about referrals your organisation receives: `urgent_at_once_others_in_digest` (the default) emails "
    "each urgent or very urgent referral at once and lists the others in a daily summary (by default at 08:00 "
    "London time); `digest_only` lists them all in the daily summary; `off` sends neither."
)
_BREACH_ALERTS = (
    "Emails when a referral your organisation made or receives is about to miss a statutory waiting-time "
    "deadline (default true)."
)


class EmailPreferencesBody(BaseModel):
    """What your organisation's contacts (PUT /v1/contacts) are emailed. Emails carry no personal details."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"new_referrals": "digest_only", "breach_alerts": True}]},
    )

    new_referrals: NewReferralEmails = Field(description=_NEW_REFERRALS)
    breach_alerts: bool = Field(description=_BREACH_ALERTS)

    @classmethod
    def of(cls, preferences: EmailPreferences) -> EmailPreferencesBody:
        return cls(new_referrals=preferences.new_referrals, breach_alerts=preferences.breach_alerts)

    def preferences(self) -> EmailPreferences:
        return EmailPreferences(self.new_referrals, self.breach_alerts)


@router.get(
    "/email-preferences",
    response_model=EmailPreferencesBody,
    summary="Which emails your organisation gets",
    description="Your organisation's choices, or the defaults while it has made none.",
)
async def get_preferences(caller: Member, uow: Uow) -> EmailPreferencesBody:
    return EmailPreferencesBody.of(await preferences_of(uow, caller.organisation_id))


@router.put(
    "/email-preferences",
    response_model=EmailPreferencesBody,
    summary="Choose which emails your organisation gets",
    description="Replaces your organisation's choices for the emails caused from now on. Turning new-referral "
    "emails off also drops the referrals waiting for the next daily summary.",
)
async def put_preferences(body: EmailPreferencesBody, caller: Member, uow: Uow) -> EmailPreferencesBody:
    return EmailPreferencesBody.of(await set_preferences(uow, caller.organisation_id, body.preferences()))
