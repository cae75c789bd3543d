"""Where an organisation wants email."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field
from pydantic_core import PydanticCustomError

from notifications.entrypoints.dependencies import Member, Uow
from notifications.service_layer.directory import set_contacts

router = APIRouter(prefix="/v1", tags=["notifications"])


def _ascii_email(email: str) -> str:
    if not email.isascii():
        raise PydanticCustomError("ascii_email", "only ASCII email addresses are accepted (our relay has no SMTPUTF8)")
    return email


class ContactsIn(BaseModel):
    """The addresses your organisation's email goes to."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"emails": ["send-duty@agency.example.org"]}]}
    )
    emails: list[Annotated[EmailStr, AfterValidator(_ascii_email)]] = Field(
        max_length=20,
        description="Up to 20 ASCII email addresses; they replace those given before. Empty for no email.",
    )


@router.put("/contacts", response_model=ContactsIn, summary="Where your organisation wants email")
async def put_contacts(body: ContactsIn, caller: Member, uow: Uow) -> ContactsIn:
    """For a referrer, receiver or admin of an organisation in the directory: the addresses that get your
    organisation's email from now on, replacing those given before: news of the referrals it made
    (accepted, rejected, scheduled, handed off), new referrals and breach alerts as chosen in
    `/v1/email-preferences`, and notice of a disabled webhook endpoint.
    Answers the addresses. Emails carry no personal details."""
    await set_contacts(uow, caller.organisation_id, [str(e) for e in body.emails])
    return body
