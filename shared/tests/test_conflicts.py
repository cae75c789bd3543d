"""A use case that lost a race runs again, at most three times, and a last loss is a 409 problem."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from send_shared.conflicts import WriteConflict, retried_on_conflict
from send_shared.web.problems import install_problem_handlers


def _losing(times: int) -> tuple[list[int], Callable[[int], Awaitable[int]]]:
    attempts: list[int] = []

    @retried_on_conflict
    async def use_case(value: int) -> int:
        attempts.append(value)
        if len(attempts) <= times:
            raise WriteConflict("another transaction wrote the key first")
        return value * 2

    return attempts, use_case


async def test_a_use_case_that_lost_twice_wins_on_its_third_attempt() -> None:
    attempts, use_case = _losing(2)
    assert await use_case(21) == 42
    assert attempts == [21, 21, 21]


async def test_a_third_loss_is_raised() -> None:
    attempts, use_case = _losing(3)
    with pytest.raises(WriteConflict):
        await use_case(1)
    assert len(attempts) == 3


async def test_a_conflict_that_reaches_the_api_is_a_409_problem() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def create() -> None:
        raise WriteConflict("lost three times")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.post("/things")
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/concurrent-change")
    assert "lost three times" not in answer.text  # the driver's words stay in the log
