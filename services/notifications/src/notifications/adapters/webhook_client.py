"""Sends one signed webhook (Standard Webhooks) and reports what happened. Never follows redirects.

Defences against a hostile receiver or URL (issue #13):

- **SSRF and DNS rebinding**: the host is resolved once, every address is checked, and the connection is
  made to a checked address (``_PinnedBackend``); httpx never resolves the name again. The URL keeps its
  host name, so the ``Host`` header, TLS SNI and certificate verification are for the name, not the address.
- **Deadline**: one deadline (``timeout``) covers the whole attempt: resolution, connection, request,
  headers and the body prefix. A receiver that drips a byte at a time cannot hold an attempt longer.
- **Size**: only the first ``RESPONSE_PREFIX_BYTES`` of the body are read (raw, no decompression); the
  rest is never read and the connection is closed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from notifications.domain.delivery import REQUEST_TIMEOUT_SECONDS
from notifications.domain.subscriptions import UnsafeTarget, check_address, check_url_shape

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
RESPONSE_PREFIX_BYTES = 4096  # the most of a response body ever read (kept in the delivery log)
_ERROR_CHARS = 500  # delivery_attempts.error is String(500)

Resolver = Callable[[str], Awaitable[list[str]]]
# The host name and the checked addresses the current attempt may connect to (set per attempt, per task).
_PINNED: ContextVar[tuple[str, tuple[str, ...]] | None] = ContextVar("webhook_pinned_addresses", default=None)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_header(secrets_in_use: list[str], webhook_id: str, timestamp: datetime, body: str) -> str:
    """``v1,<sig>`` per secret, space-separated: during a rotation both old and new secrets sign."""
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets_in_use)


async def system_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def connect_host(url: str) -> str:
    """The host name exactly as httpx will connect to it (IDNA-encoded, lower case, IPv6 without brackets)."""
    try:
        return httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise UnsafeTarget("the URL's host is not valid") from exc


async def resolve_and_check(
    url: str, *, require_https: bool, allow_private: bool, resolver: Resolver = system_resolver
) -> tuple[str, tuple[str, ...]]:
    """Refuses the URL if its host resolves to any address we must not call (SSRF); returns the host
    name and the checked addresses, which are the only ones a connection may then be made to."""
    check_url_shape(url, require_https=require_https)
    host = connect_host(url)
    if not host:
        raise UnsafeTarget("the URL has no host")
    try:
        found = await resolver(host)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnsafeTarget(f"{host[:100]} does not resolve") from exc
    if not found:
        raise UnsafeTarget(f"{host[:100]} does not resolve")
    for address in found:
        check_address(address, allow_private=allow_private)
    return host, tuple(dict.fromkeys(found))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the addresses checked for this attempt's host; never resolves a name itself."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pinned = _PINNED.get()
        if pinned is None or pinned[0] != host:
            raise httpcore.ConnectError(f"{host[:100]} was not checked for this attempt; not connecting")
        failure: Exception | None = None
        for address in pinned[1]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host[:100]}: no address to connect to")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connection pool built on ``_PinnedBackend`` (httpx has no public
    option for a network backend; the DNS rebinding test fails if this stops taking effect)."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None
    retry_after: str | None
    error_class: str | None = None  # what failed, for logs: ``error`` may quote the URL


class WebhookClient:
    def __init__(
        self,
        *,
        require_https: bool,
        allow_private: bool,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: the certificates trusted for receivers (default: the public CAs, certifi's)."""
        self.require_https = require_https
        self.allow_private = allow_private
        self.timeout = timeout  # a deadline for the whole attempt, not per read
        self.resolver = resolver
        self.http = httpx.AsyncClient(
            transport=_PinnedTransport(
                httpx.Limits(max_connections=200, max_keepalive_connections=50), ssl_context=ssl_context
            ),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would connect to a name we did not check
            headers={"user-agent": "send-referrals-webhooks/1.0", "accept-encoding": "identity"},
        )

    @property
    def closed(self) -> bool:
        return self.http.is_closed

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, url: str, *, webhook_id: str, body: str, secrets_in_use: list[str], now: datetime) -> Attempt:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._attempt(
                    url, webhook_id=webhook_id, body=body, secrets_in_use=secrets_in_use, now=now, started=started
                )
        except TimeoutError:
            return Attempt(None, _ms(started), f"timeout after {self.timeout:g} s", None, None, "TimeoutError")

    async def _attempt(
        self, url: str, *, webhook_id: str, body: str, secrets_in_use: list[str], now: datetime, started: float
    ) -> Attempt:
        try:
            pinned = await resolve_and_check(
                url, require_https=self.require_https, allow_private=self.allow_private, resolver=self.resolver
            )
        except UnsafeTarget as exc:
            return Attempt(None, _ms(started), _clean(f"refused: {exc}")[:_ERROR_CHARS], None, None, "UnsafeTarget")
        token = _PINNED.set(pinned)
        try:
            async with self.http.stream(
                "POST",
                url,
                content=body.encode(),
                headers={
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signature_header(secrets_in_use, webhook_id, now, body),
                },
            ) as response:
                excerpt = await _body_prefix(response, RESPONSE_PREFIX_BYTES)
                retry_after = response.headers.get("retry-after")
                return Attempt(
                    response.status_code,
                    _ms(started),
                    None,
                    excerpt,
                    _clean(retry_after)[:200] if retry_after is not None else None,
                )
        except httpx.TimeoutException as exc:
            return Attempt(None, _ms(started), f"timeout after {self.timeout:g} s", None, None, type(exc).__name__)
        except httpx.HTTPError as exc:
            error = _clean(f"{type(exc).__name__}: {exc}")[:_ERROR_CHARS]
            return Attempt(None, _ms(started), error, None, None, type(exc).__name__)
        finally:
            _PINNED.reset(token)


async def _body_prefix(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the raw body; the rest is never read (closing the response drops it)."""
    kept = bytearray()
    async with contextlib.aclosing(cast(AsyncGenerator[bytes, None], response.aiter_raw())) as chunks:
        async for chunk in chunks:
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    return _clean(bytes(kept).decode("utf-8", errors="replace"))


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a receiver's words are stored, so they lose it."""
    return text.replace("\x00", "\ufffd")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
