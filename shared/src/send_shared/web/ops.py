"""Operational endpoints: /healthz (process alive), /readyz (dependencies answer and no part is stuck), /metrics."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from send_shared.metrics import HTTP_REQUESTS, HTTP_SECONDS, READINESS_PART_OK

ReadinessCheck = Callable[[], Awaitable[bool]]


def ops_router(
    checks: Mapping[str, ReadinessCheck],
    report: Callable[[], Mapping[str, str | None]],
    *,
    metrics_token: str | None = None,
) -> APIRouter:
    """``checks`` ask the database and the broker; ``report`` says what each worker knows of itself
    (None when well, else why not: stuck, healing, failing). With ``metrics_token``, /metrics asks
    for it as a bearer token (the figures there are suppressed aggregates, but still not for everyone)."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        summary="Liveness: the process is up",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def healthz() -> dict[str, str]:
        """Answers 200 while the process runs, whatever its dependencies do: restart it only if this fails."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database and broker answer, and nothing is stuck, healing or failing",
        responses={
            200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
            503: {
                "description": "not ready; each check that is not `ok` says why",
                "content": {"application/json": {"example": NOT_READY_EXAMPLE}},
            },
        },
    )
    async def readyz() -> JSONResponse:
        """200 when the database and the broker answer and every part (relay, consumers, workers) makes
        progress; 503 otherwise, each check that is not `ok` saying why. Send traffic only while it is 200."""
        names = list(checks)
        results = await asyncio.gather(*(_safe(checks[name]) for name in names))
        status = dict(zip(names, ("ok" if ok else "down" for ok in results), strict=True))
        status.update({name: problem or "ok" for name, problem in report().items()})
        ready = all(value == "ok" for value in status.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": status}, status_code=200 if ready else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if metrics_token is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {metrics_token}".encode()
        ):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        for name, problem in report().items():  # from memory, no I/O: cheap enough for every scrape
            READINESS_PART_OK.labels(name).set(0 if problem else 1)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


READY_EXAMPLE = {"status": "ready", "checks": {"database": "ok", "broker": "ok", "outbox": "ok"}}
NOT_READY_EXAMPLE = {
    "status": "not ready",
    "checks": {"database": "ok", "broker": "ok", "outbox": "healing: measuring what the broker lost"},
}


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), 3.0)
    except Exception:  # noqa: BLE001 - a failing check means not ready
        return False


class MetricsMiddleware:
    """Counts and times requests by route template (never the raw path: ids would explode cardinality).
    Plain ASGI rather than BaseHTTPMiddleware, which costs a task and a queue per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = _route_template(scope)
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    for candidate in scope["app"].router.routes:
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def install_metrics(app: FastAPI) -> None:
    app.add_middleware(MetricsMiddleware)
