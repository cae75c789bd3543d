"""HTTP API of the waitlists service (v1). Aggregates only: no personal data."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from send_shared.auth import Principal, Role, TokenVerifier, require_roles
from waitlists.adapters.orm import referral_states

WAITING = ("submitted", "acknowledged", "accepted", "scheduled", "on_hold")


class WaitingCount(BaseModel):
    service_id: str
    waiting: int


def build_router(*, sessions: async_sessionmaker[AsyncSession], verifier: TokenVerifier) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["waitlists"])
    ops = Annotated[Principal, Depends(require_roles(verifier, Role.OPS, Role.ADMIN))]

    @router.get("/waiting", response_model=list[WaitingCount], summary="Referrals waiting now, per service")
    async def waiting(
        _caller: ops, service_id: Annotated[str | None, Query(max_length=64)] = None
    ) -> list[WaitingCount]:
        query = (
            select(referral_states.c.service_id, func.count())
            .where(referral_states.c.status.in_(WAITING))
            .group_by(referral_states.c.service_id)
            .order_by(referral_states.c.service_id)
        )
        if service_id:
            query = query.where(referral_states.c.service_id == service_id)
        async with sessions() as session:
            rows = (await session.execute(query)).all()
        return [WaitingCount(service_id=row[0], waiting=row[1]) for row in rows]

    return router
