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
    model_config = ConfigDict(extra="forbid")
    emails: list[Annotated[EmailStr, AfterValidator(_ascii_email)]] = Field(max_length=20)


@router.put("/contacts", response_model=ContactsIn, summary="Where your organisation wants email")
async def put_contacts(body: ContactsIn, caller: Member, uow: Uow) -> ContactsIn:
    await set_contacts(uow, caller.organisation_id, [str(e) for e in body.emails])
    return body
