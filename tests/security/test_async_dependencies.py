"""No route of any service depends on a plain ``def`` function: FastAPI runs those in its thread pool, a thread
hop per dependency per request (16 per submission cost a sixth of its time, bench/results/refactor-2026-12-07)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from .conftest import build_service_app


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "include_context", None)
        if included is not None:
            yield from _routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route


def _runs_on_the_loop(call: Any) -> bool:
    """A coroutine function, or an instance (such as HTTPBearer) whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(call) or (
        not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)
    )


@pytest.mark.parametrize("service", ["referrals", "waitlists", "notifications"])
def test_every_dependency_of_every_route_is_a_coroutine(service: str, tmp_path: Any) -> None:
    app = build_service_app(service, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", "127.0.0.1:9")
    threaded = sorted(
        {
            f"{route.path}: {getattr(d.call, '__qualname__', d.call)}"
            for route in _routes(list(app.routes))
            for d in _dependants(route.dependant)
            if d.call is not None and not _runs_on_the_loop(d.call)
        }
    )  # fmt: skip
    assert not threaded, f"dependencies FastAPI would run in a thread: {threaded}"
