"""RFC 9457 problem details for every error a service returns; never a bare 500 page or a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from send_shared.conflicts import WriteConflict
from send_shared.web.headers import COMMON, DATA_POLICY

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://send-referrals.example/problems/"
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise from a route or use case; rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = headers
        self.extensions = extensions


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, kind=exc.kind, headers=exc.headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(e.get("loc", ())), "rule": e.get("type", "invalid"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return problem_response(
            request,
            422,
            "Validation failed",
            "The request does not meet the API's rules.",
            kind="validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorised", 403: "Forbidden"}.get(
            exc.status_code, "HTTP error"
        )
        return problem_response(
            request,
            exc.status_code,
            title,
            str(exc.detail) if exc.detail else None,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(WriteConflict)
    async def _conflict(request: Request, exc: WriteConflict) -> JSONResponse:
        log.warning("lost every race for a unique key", extra={"path": request.url.path, "error": str(exc)})
        return problem_response(
            request,
            409,
            "Concurrent change",
            "Other requests changed the same records at the same moment, each time this one was tried; nothing of "
            "this request was kept. Send it again.",
            kind="concurrent-change",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        # Starlette answers this from its outermost middleware, outside SecurityHeaders: set them here.
        return problem_response(
            request,
            500,
            "Internal error",
            "The error was logged; nothing was changed.",
            kind="internal",
            headers={**COMMON, "content-security-policy": DATA_POLICY},
        )


# --- the OpenAPI document says what the handlers above return ------------------------------------

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "description": "RFC 9457 problem details; extension members (e.g. `errors`, `current_version`) may follow.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "URI of the kind of problem."},
        "title": {"type": "string", "description": "A short summary of the kind of problem, the same every time."},
        "status": {"type": "integer", "description": "The HTTP status code, repeated."},
        "detail": {"type": "string", "description": "What went wrong with this request, in words."},
        "instance": {"type": "string", "description": "The request path."},
    },
    "additionalProperties": True,
}
_VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "A 422: `errors` names each field and the rule it broke.",
    "allOf": [
        {"$ref": "#/components/schemas/ProblemDetails"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "description": "One entry for each field that broke a rule.",
                    "items": {
                        "type": "object",
                        "required": ["field", "rule", "message"],
                        "properties": {
                            "field": {"type": "string", "description": "The field, header or column at fault."},
                            "rule": {"type": "string", "description": "The rule it broke, as a stable code."},
                            "message": {"type": "string", "description": "The rule in words, for a person."},
                            "line": {"type": "integer", "description": "Line of an imported file."},
                        },
                        "additionalProperties": True,
                    },
                }
            },
        },
    ],
}
_AUTHENTICATED = {
    "401": "No, expired or forged bearer token",
    "403": "The caller's role or organisation may not do this",
    "404": "Not found, or not visible to the caller's organisation",
    "429": "The organisation's rate limit is used up: see Retry-After",
}
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _problem_content(schema: str) -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def add_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what ``install_problem_handlers`` and the shared middleware return:
    every authenticated operation may answer 401, 403, 404 and 429; every operation with parameters or
    a body 422 (our ValidationProblem, not FastAPI's ``HTTPValidationError``); every operation with a
    body 400 (unreadable) and 413; and every 4xx an operation declares is problem+json (unless it names its content)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ProblemDetails"] = _PROBLEM_SCHEMA
    schemas["ValidationProblem"] = _VALIDATION_PROBLEM_SCHEMA
    for path_item in document.get("paths", {}).values():
        shared_parameters = bool(path_item.get("parameters"))
        for method in _HTTP_METHODS:
            operation = path_item.get(method)
            if not isinstance(operation, dict):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if operation.get("security") or document.get("security"):
                for code, text in _AUTHENTICATED.items():
                    responses.setdefault(code, {"description": text})
            if shared_parameters or operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", {"description": "Invalid request: `errors` names each field and rule"})
            if operation.get("requestBody"):
                responses.setdefault("400", {"description": "The body could not be read (e.g. it is not UTF-8)"})
                responses.setdefault("413", {"description": "The request body is over the size limit"})
            for code, response in responses.items():
                if not str(code).startswith("4") or "$ref" in response:
                    continue
                content = response.get("content") or {}
                named = {media: body for media, body in content.items() if body.get("schema")}
                if str(code) == "422":
                    # FastAPI documents its own HTTPValidationError; the handler above answers problem+json.
                    named = {media: body for media, body in named.items() if media != "application/json"}
                    named.pop(PROBLEM_JSON, None)
                    response["content"] = {**_problem_content("ValidationProblem"), **named}
                elif not named:
                    response["content"] = _problem_content("ProblemDetails")
    unused = "HTTPValidationError"
    if unused in schemas and f"#/components/schemas/{unused}" not in _refs(document):
        schemas.pop(unused)
        if "ValidationError" in schemas and "#/components/schemas/ValidationError" not in _refs(document):
            schemas.pop("ValidationError")
    return document


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def document_problems(app: FastAPI) -> None:
    """Post-process the app's OpenAPI document (built lazily, once) with :func:`add_problem_responses`,
    so every route of every service documents its problem+json answers without saying so itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
