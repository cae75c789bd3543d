"""The route tests' app: the waitlists routers over the in-memory unit of work holding one referral, its
dependencies swapped with ``dependency_overrides``, and the caller a test can change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from send_shared.auth import Principal, Role, current_principal, organisation_lookup
from send_shared.web.problems import install_problem_handlers
from waitlists.entrypoints.dependencies import unit_of_work
from waitlists.entrypoints.routers import ROUTERS
from waitlists.service_layer.projection import refresh_marked_facts

from .fake_unit_of_work import FakeUnitOfWork
from .test_services import change, organisation, project, service


class Caller:
    def __init__(self) -> None:
        self.principal = Principal("duty@camhs", "org-camhs", Role.RECEIVER)

    def act_as(self, organisation_id: str, role: Role = Role.RECEIVER) -> None:
        self.principal = Principal(f"someone@{organisation_id}", organisation_id, role)


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    # One referral, submitted Monday 5 January to a CYPMH 4-week service: due to breach on 3 February.
    await project(uow, organisation(1, "CAMHS"), service(1, ["cypmh_4w"]), change("r1", 1, "submitted", "2026-01-05"))
    await refresh_marked_facts(uow)
    return uow


@pytest.fixture
async def http(uow: FakeUnitOfWork, caller: Caller) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    async def is_known(organisation_id: str) -> bool:
        return organisation_id in ("org-camhs", "org-school", "org-other")

    app.dependency_overrides[unit_of_work] = lambda: uow
    app.dependency_overrides[current_principal] = lambda: caller.principal
    app.dependency_overrides[organisation_lookup] = lambda: is_known
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client
