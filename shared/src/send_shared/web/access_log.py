"""One structured log line per HTTP request: method, path, route, status, duration and client.

The path is logged without its query string (queries can carry search terms), and as its route's template when
that route takes a ``{token}`` (a secret link such as the family view's must not reach the logs); probes and scrapes
(``/healthz``, ``/readyz``, ``/metrics``) are left out so they do not drown the requests people make.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("send.access")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AccessLog:
    """Pure ASGI middleware, placed outermost so its duration covers everything the service does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = scope.get("route")
            client = scope.get("client")
            template = getattr(route, "path", None)
            path = template if template and "{token}" in template else scope["path"]
            log.info(
                "%s %s %s",
                scope["method"],
                path,
                status,
                extra={
                    "http_method": scope["method"],
                    "http_path": path,
                    "http_route": getattr(route, "path", None),
                    "http_status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
