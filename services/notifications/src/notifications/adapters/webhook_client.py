"""Sends one signed webhook (Standard Webhooks) and reports what happened. Never follows redirects."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook

from notifications.domain.delivery import REQUEST_TIMEOUT_SECONDS
from notifications.domain.subscriptions import UnsafeTarget, check_address, check_url_shape

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
_EXCERPT = 500


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_header(secrets_in_use: list[str], webhook_id: str, timestamp: datetime, body: str) -> str:
    """``v1,<sig>`` per secret, space-separated: during a rotation both old and new secrets sign."""
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets_in_use)


async def resolve_and_check(url: str, *, require_https: bool, allow_private: bool) -> None:
    """Refuses the URL if its host resolves to any address we must not call (SSRF)."""
    host = check_url_shape(url, require_https=require_https)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeTarget(f"{host} does not resolve") from exc
    for info in infos:
        check_address(str(info[4][0]), allow_private=allow_private)


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None
    retry_after: str | None


class WebhookClient:
    def __init__(self, *, require_https: bool, allow_private: bool, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.require_https = require_https
        self.allow_private = allow_private
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"user-agent": "send-referrals-webhooks/1.0"},
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    @property
    def closed(self) -> bool:
        return self.http.is_closed

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, url: str, *, webhook_id: str, body: str, secrets_in_use: list[str], now: datetime) -> Attempt:
        started = time.perf_counter()
        try:
            await resolve_and_check(url, require_https=self.require_https, allow_private=self.allow_private)
            timestamp = int(now.timestamp())
            response = await self.http.post(
                url,
                content=body.encode(),
                headers={
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": signature_header(secrets_in_use, webhook_id, now, body),
                },
            )
        except UnsafeTarget as exc:
            return Attempt(None, _ms(started), f"refused: {exc}", None, None)
        except httpx.TimeoutException:
            return Attempt(None, _ms(started), f"timeout after {self.timeout:g} s", None, None)
        except httpx.HTTPError as exc:
            return Attempt(None, _ms(started), f"{type(exc).__name__}: {exc}"[:_EXCERPT], None, None)
        return Attempt(
            response.status_code,
            _ms(started),
            None,
            response.text[:_EXCERPT],
            response.headers.get("retry-after"),
        )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
