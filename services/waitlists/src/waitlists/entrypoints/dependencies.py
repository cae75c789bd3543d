"""What every route depends on, as overridable dependencies: the unit of work (``app.state.unit_of_work``, a
factory set by the bootstrap) and the callers each group of routes admits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from send_shared.auth import Principal, Role, require_known_roles
from waitlists.domain.waits import WaitPolicy
from waitlists.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory


async def unit_of_work(request: Request) -> UnitOfWork:
    factory: UnitOfWorkFactory = request.app.state.unit_of_work
    return factory()


UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]


async def wait_policy(request: Request) -> WaitPolicy:
    """The settings predicted waits are made with (``app.state.wait_policy``, set by the bootstrap; the defaults
    otherwise)."""
    policy: WaitPolicy = getattr(request.app.state, "wait_policy", WaitPolicy())
    return policy


WaitPolicyDep = Annotated[WaitPolicy, Depends(wait_policy)]
# Anyone from an organisation in the directory: figures of another organisation are under disclosure control.
Reader = Annotated[Principal, Depends(require_known_roles(Role.OPS, Role.ADMIN, Role.RECEIVER, Role.REFERRER))]
Operations = Annotated[Principal, Depends(require_known_roles(Role.OPS, Role.ADMIN))]
