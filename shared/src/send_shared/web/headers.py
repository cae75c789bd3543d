"""Security headers on every response of every service.

API responses (JSON, CSV, problem details, /metrics) are data, and their policy allows nothing at
all. A service that serves a page names its own policy for that path (the waitlists dashboard allows
only its own files). The API docs pages set their own policy (``send_shared.web.docs``), which this
middleware leaves in place.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, pages: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.pages = dict(pages or {})

    def policy_for(self, path: str) -> str:
        for prefix, policy in self.pages.items():
            if path == prefix or path.startswith(prefix + "/"):
                return policy
        return DATA_POLICY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", policy)
            await send(message)

        await self.app(scope, receive, with_headers)
