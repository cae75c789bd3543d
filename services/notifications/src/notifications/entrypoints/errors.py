"""Domain errors as problem+json answers, each mapped once for every route."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from notifications.domain.subscriptions import UnsafeTarget
from notifications.service_layer.endpoints import EndpointNotFound
from send_shared.web.problems import problem_response


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 404, "Not found", "no such endpoint", kind="not-found")


async def _unsafe(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request, 422, "Validation failed", str(exc), kind="validation",
        errors=[{"field": "url", "rule": "safe_target", "message": str(exc)}],
    )  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EndpointNotFound, _not_found)
    app.add_exception_handler(UnsafeTarget, _unsafe)
