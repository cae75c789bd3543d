"""The notifications webhook sender as it was before issue #19 (httpx 0.28 with a pinned-address network backend),
kept here as the baseline of ``bench/webhook_clients.py``: the same deadline, pinning, headers, redirect policy and
bounded read as ``notifications.adapters.webhook_client`` had at commit ``fc8ee2a`` (last changed in ``aa5a965``)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncGenerator, Iterable
from contextvars import ContextVar
from datetime import datetime
from typing import cast

import httpcore
import httpx

from notifications.adapters.webhook_client import (
    RESPONSE_PREFIX_BYTES,
    Attempt,
    Resolver,
    resolve_and_check,
    signature_header,
)
from notifications.domain.subscriptions import UnsafeTarget

_PINNED: ContextVar[tuple[str, tuple[str, ...]] | None] = ContextVar("httpx_pinned_addresses", default=None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
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
    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )


class HttpxWebhookClient:
    def __init__(
        self,
        *,
        require_https: bool,
        allow_private: bool,
        timeout: float,
        resolver: Resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.require_https = require_https
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver
        self.http = httpx.AsyncClient(
            transport=_PinnedTransport(
                httpx.Limits(max_connections=200, max_keepalive_connections=50), ssl_context=ssl_context
            ),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "send-referrals-webhooks/1.0", "accept-encoding": "identity"},
        )

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
            return Attempt(None, _ms(started), _clean(f"refused: {exc}")[:500], None, None, "UnsafeTarget")
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
            error = _clean(f"{type(exc).__name__}: {exc}")[:500]
            return Attempt(None, _ms(started), error, None, None, type(exc).__name__)
        finally:
            _PINNED.reset(token)


async def _body_prefix(response: httpx.Response, limit: int) -> str:
    kept = bytearray()
    async with contextlib.aclosing(cast(AsyncGenerator[bytes, None], response.aiter_raw())) as chunks:
        async for chunk in chunks:
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    return _clean(bytes(kept).decode("utf-8", errors="replace"))


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
