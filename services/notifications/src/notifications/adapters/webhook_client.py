"""Sends one signed webhook (Standard Webhooks) and reports what happened. Never follows redirects.

Defences against a hostile receiver or URL (issue #13):

- **SSRF and DNS rebinding**: the host is resolved once, every address is checked, and the connection is
  made to a checked address (``_PinnedResolver``, the connector's only resolver); aiohttp never resolves the
  name again. The URL keeps its host name, so the ``Host`` header, TLS SNI and certificate verification are
  for the name, not the address.
- **Deadline**: one deadline (``timeout``) covers the whole attempt: resolution, connection, request,
  headers and the body prefix. A receiver that drips a byte at a time cannot hold an attempt longer.
- **Size**: only the first ``RESPONSE_PREFIX_BYTES`` of the body are read (raw, no decompression); the
  rest is never read and the connection is closed.

aiohttp rather than httpx since issue #19: about a fifth of the CPU per request (``bench/webhook_clients.py``).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks.webhooks import Webhook
from yarl import URL

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
    """The host name exactly as aiohttp will resolve it (IDNA-encoded, lower case, IPv6 without brackets)."""
    try:
        return URL(url).raw_host or ""
    except (UnicodeError, ValueError, TypeError) as exc:
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


class _PinnedResolver(AbstractResolver):
    """The connector's only resolver: answers with the addresses checked for this attempt's host, never
    resolving a name itself. (aiohttp connects to an IP literal without asking; ``resolve_and_check`` has
    checked that literal.)"""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = _PINNED.get()
        if pinned is None or pinned[0] != host:
            raise OSError(f"{host[:100]} was not checked for this attempt; not connecting")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in pinned[1]
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None
    retry_after: str | None
    error_class: str | None = None  # what failed, for logs: ``error`` may quote the URL


class WebhookClient:
    """One long-lived aiohttp session, opened on the first send (aiohttp needs the running loop) and
    closed by ``close``."""

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
        self._ssl_context = ssl_context or ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the webhook client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    resolver=_PinnedResolver(),
                    use_dns_cache=False,  # every new connection asks the pinned resolver, within its attempt
                    ssl=self._ssl_context,
                    limit=200,
                    limit_per_host=0,
                    keepalive_timeout=5.0,
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,  # no proxy from the environment: it would connect to a name we did not check
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # nothing a receiver sets is sent anywhere
                headers={"user-agent": "send-referrals-webhooks/1.0", "accept-encoding": "identity"},
            )
        return self._session

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
            async with self._http().post(
                url,
                data=body.encode(),
                headers={
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signature_header(secrets_in_use, webhook_id, now, body),
                },
                allow_redirects=False,
            ) as response:
                excerpt = await _body_prefix(response.content, RESPONSE_PREFIX_BYTES)
                retry_after = response.headers.get("retry-after")
                return Attempt(
                    response.status,
                    _ms(started),
                    None,
                    excerpt,
                    _clean(retry_after)[:200] if retry_after is not None else None,
                )
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            return Attempt(None, _ms(started), f"timeout after {self.timeout:g} s", None, None, type(exc).__name__)
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: aiohttp refuses a header it cannot send
            error = _clean(f"{type(exc).__name__}: {exc}")[:_ERROR_CHARS]
            return Attempt(None, _ms(started), error, None, None, type(exc).__name__)
        finally:
            _PINNED.reset(token)


async def _body_prefix(body: aiohttp.StreamReader, limit: int) -> str:
    """At most ``limit`` bytes of the raw body; the rest is never read (releasing an unfinished response
    closes its connection)."""
    kept = bytearray()
    while len(kept) < limit and (chunk := await body.read(limit - len(kept))):
        kept += chunk
    return _clean(bytes(kept).decode("utf-8", errors="replace"))


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a receiver's words are stored, so they lose it."""
    return text.replace("\x00", "\ufffd")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
