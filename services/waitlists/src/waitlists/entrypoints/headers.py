"""Response headers: security headers on every response, and ``Content-Disposition`` built safely.

The dashboard (``/dashboard``) is a same-origin page with no inline script or style, so its policy
allows only its own files; every other response (JSON, CSV, problem details, /metrics) is data, and
its policy allows nothing at all. The interactive API docs load Swagger UI from a CDN with an inline
script, so they keep the other headers but no policy.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_DOCS = ("/docs", "/redoc")


def policy_for(path: str) -> str | None:
    if path == "/dashboard" or path.startswith("/dashboard/"):
        return DASHBOARD_POLICY
    if path.startswith(_DOCS):
        return None
    return DATA_POLICY


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                if policy is not None:
                    headers.setdefault("content-security-policy", policy)
            await send(message)

        await self.app(scope, receive, with_headers)


_UNSAFE_FALLBACK = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` fallback (anything but letters, digits, dot, hyphen and
    underscore becomes ``_``) and the exact name as ``filename*=UTF-8''…`` (RFC 6266, RFC 5987): no
    quote, semicolon, control or non-Latin-1 character from input ever reaches the header raw."""
    fallback = _UNSAFE_FALLBACK.sub("_", filename)[:150] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
