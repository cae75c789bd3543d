"""Issue #13, delivery side: a receiver (or its DNS) that tries to hurt the service.

Each receiver here is a raw asyncio server, so the test controls every byte and sees when the
connection is dropped. Oracles are the rules: at most 4 KiB of a body is ever read, one deadline
bounds the whole attempt, and a connection goes only to an address that was checked.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from notifications.adapters.webhook_client import WebhookClient

from .conftest import CAMHS, bearer, consume, referral_event
from .test_webhooks import dispatching, until

PREFIX_LIMIT = 4096  # the rule: at most 4 KiB of a response body is kept (and read)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Seen:
    requests: list[dict[str, str]] = field(default_factory=list)
    bytes_sent: int = 0
    dropped_at: float | None = None  # when the client closed the connection on us


async def read_request(reader: asyncio.StreamReader) -> dict[str, str]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    headers[":request-line"] = lines[0]
    return headers


@asynccontextmanager
async def raw_server(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, port)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def client(timeout: float = 5.0, *, allow_private: bool = True) -> WebhookClient:
    return WebhookClient(require_https=False, allow_private=allow_private, timeout=timeout)


async def send(c: WebhookClient, url: str) -> Any:
    return await c.send(url, webhook_id="msg_1", body='{"a":1}', secrets_in_use=[_SECRET], now=datetime.now(UTC))


_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endless_body(seen: Seen, *, content_length: int | None) -> Handler:
    chunk = b"\x00ok" * 21_845  # ~64 KiB, with NULs that PostgreSQL text cannot hold

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.requests.append(await read_request(reader))
        length = f"content-length: {content_length}\r\n" if content_length is not None else ""
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{length}\r\n".encode())
        deadline = time.monotonic() + 30
        cap = content_length or 128 * 1024 * 1024  # "endless", but bounded so a regression fails, not OOMs
        try:
            while time.monotonic() < deadline and seen.bytes_sent < cap:
                writer.write(chunk)
                await writer.drain()
                seen.bytes_sent += len(chunk)
        except (ConnectionError, OSError):
            seen.dropped_at = time.monotonic()
        finally:
            writer.close()

    return handle


@pytest.mark.parametrize("content_length", [None, 50 * 1024 * 1024], ids=["endless", "50MB"])
async def test_a_huge_response_is_read_only_up_to_the_prefix(content_length: int | None) -> None:
    seen = Seen()
    c = client(timeout=10.0)
    try:
        async with raw_server(endless_body(seen, content_length=content_length)) as port:
            started = time.monotonic()
            attempt = await send(c, f"http://127.0.0.1:{port}/hook")
            took = time.monotonic() - started
            await until(lambda: seen.dropped_at is not None, "the receiver sees the connection dropped", 5)
    finally:
        await c.close()
    assert attempt.status_code == 200 and attempt.error is None
    assert took < 3.0, f"the attempt took {took:.1f} s reading a body it should have dropped"
    assert attempt.response_excerpt is not None and 0 < len(attempt.response_excerpt) <= PREFIX_LIMIT
    assert "\x00" not in attempt.response_excerpt, "PostgreSQL text cannot store NUL"
    assert seen.bytes_sent < 40 * 1024 * 1024, "the body was not read to its end"


def drip(where: str, every: float = 0.3) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if where == "headers":
            writer.write(b"HTTP/1.1 200 OK\r\nx-drip: ")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        try:
            for _ in range(100):  # a byte every 0.3 s: never idle for as long as the deadline
                await writer.drain()
                await asyncio.sleep(every)
                writer.write(b"a")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return handle


@pytest.mark.parametrize("where", ["headers", "body"])
async def test_a_slow_drip_receiver_is_cut_off_at_the_attempt_deadline(where: str) -> None:
    c = client(timeout=1.0)
    try:
        async with raw_server(drip(where)) as port:
            started = time.monotonic()
            attempt = await send(c, f"http://127.0.0.1:{port}/hook")
            took = time.monotonic() - started
    finally:
        await c.close()
    assert attempt.status_code is None
    assert attempt.error is not None and "timeout" in attempt.error
    assert 0.9 <= took < 1.8, f"a 1 s deadline ended the attempt after {took:.2f} s"


@dataclass
class RebindingDns:
    """A name whose first answer is ``first`` and every later answer ``then`` (the DNS rebinding attack)."""

    name: str
    first: str
    then: str
    asked: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = socket.getaddrinfo

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host in (self.name, self.name.encode()):
                self.asked += 1
                return real(self.first if self.asked == 1 else self.then, port, *args, **kwargs)
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a TCP connection is opened to (asyncio's event loop connects every TCP socket through
    ``sock_connect``, whichever HTTP client asks); only loopback ones are really made (no traffic leaves)."""
    made: list[str] = []
    real = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    async def recording(loop: Any, sock: socket.socket, address: Any) -> None:
        made.append(str(address[0]))
        if not str(address[0]).startswith("127."):
            raise OSError("test: no connection leaves this machine")
        await real(loop, sock, address)

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", recording)
    return made


async def test_dns_rebinding_to_a_private_address_reaches_nothing(
    monkeypatch: pytest.MonkeyPatch, connections: list[str]
) -> None:
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.requests.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    dns = RebindingDns("rebind.test", first="93.184.215.14", then="127.0.0.1")
    dns.install(monkeypatch)
    c = client(timeout=1.0, allow_private=False)
    try:
        async with raw_server(handle) as port:
            attempt = await send(c, f"http://rebind.test:{port}/hook")
    finally:
        await c.close()
    assert seen.requests == [], "the request reached the private address the name rebound to"
    assert attempt.status_code is None
    assert dns.asked == 1, "the name was resolved again after the check"
    assert connections == ["93.184.215.14"], f"connected to {connections}, not only to the checked address"


async def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(
    monkeypatch: pytest.MonkeyPatch, connections: list[str]
) -> None:
    checked, later = Seen(), Seen()

    def answer(seen: Seen) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.requests.append(await read_request(reader))
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
            writer.close()

        return handle

    dns = RebindingDns("hooks.test", first="127.0.0.1", then="127.0.0.2")
    dns.install(monkeypatch)
    c = client(timeout=3.0)
    try:
        async with raw_server(answer(checked), "127.0.0.1") as port, raw_server(answer(later), "127.0.0.2", port):
            first = await send(c, f"http://hooks.test:{port}/hook")
    finally:
        await c.close()
    assert first.status_code == 204, first.error
    assert later.requests == [] and len(checked.requests) == 1
    assert checked.requests[0]["host"] == f"hooks.test:{port}", "the Host header keeps the name"
    assert dns.asked == 1
    assert connections == ["127.0.0.1"]


def answering(seen: Seen, head: bytes, body: bytes = b"") -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.requests.append(await read_request(reader))
        writer.write(head + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return handle


async def test_a_redirect_is_recorded_not_followed() -> None:
    first, target = Seen(), Seen()
    c = client()
    try:
        async with raw_server(answering(target, b"HTTP/1.1 204 No Content\r\n")) as elsewhere:
            moved = f"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{elsewhere}/internal\r\n"
            async with raw_server(answering(first, moved.encode())) as port:
                attempt = await send(c, f"http://127.0.0.1:{port}/hook")
    finally:
        await c.close()
    assert attempt.status_code == 307 and len(first.requests) == 1
    assert target.requests == [], "the redirect was followed"


async def test_a_header_that_cannot_be_sent_is_a_failed_attempt_not_a_crash() -> None:
    """A message id with a line break would be header injection: refused before anything is sent, and
    recorded as the attempt's error so the lane goes on."""
    seen = Seen()
    c = client()
    try:
        async with raw_server(answering(seen, b"HTTP/1.1 204 No Content\r\n")) as port:
            attempt = await c.send(f"http://127.0.0.1:{port}/hook", webhook_id="msg_1\r\nx-injected: 1",
                                   body='{"a":1}', secrets_in_use=[_SECRET], now=datetime.now(UTC))  # fmt: skip
    finally:
        await c.close()
    assert attempt.status_code is None and attempt.error and "ValueError" in attempt.error
    assert seen.requests == []


async def test_proxy_settings_in_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would connect to a name that was never checked."""
    direct, proxy = Seen(), Seen()
    c = client()
    try:
        async with (
            raw_server(answering(proxy, b"HTTP/1.1 200 OK\r\n")) as proxy_port,
            raw_server(answering(direct, b"HTTP/1.1 204 No Content\r\n")) as port,
        ):
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
                monkeypatch.setenv(name, f"http://127.0.0.1:{proxy_port}")
            monkeypatch.delenv("NO_PROXY", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            attempt = await send(c, f"http://127.0.0.1:{port}/hook")
    finally:
        await c.close()
    assert attempt.status_code == 204 and len(direct.requests) == 1
    assert proxy.requests == []


async def test_a_compressed_response_is_kept_raw_never_inflated() -> None:
    """A gzip bomb: 64 MiB of zeros in about 64 KiB. Only the raw prefix is read."""
    seen = Seen()
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    c = client()
    try:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n"
        async with raw_server(answering(seen, head, bomb)) as port:
            attempt = await send(c, f"http://127.0.0.1:{port}/hook")
    finally:
        await c.close()
    assert attempt.status_code == 200 and attempt.error is None
    assert seen.requests[0]["accept-encoding"] == "identity"
    excerpt = attempt.response_excerpt
    assert excerpt is not None and 0 < len(excerpt) <= PREFIX_LIMIT
    assert excerpt.startswith("\x1f"), "the excerpt is the raw gzip stream (magic 1f 8b), not the inflated body"


@pytest.mark.parametrize(
    "url", ["https://[2002:7f00:1::]/hook", "https://[64:ff9b::a9fe:a9fe]/", "https://[::ffff:127.0.0.1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"],
)  # fmt: skip
async def test_transition_addresses_are_refused_at_delivery_time(url: str, connections: list[str]) -> None:
    c = WebhookClient(require_https=True, allow_private=False, timeout=2.0)
    try:
        attempt = await send(c, url)
    finally:
        await c.close()
    assert attempt.status_code is None and attempt.error is not None and attempt.error.startswith("refused")
    assert connections == []


async def test_the_delivery_log_keeps_a_bounded_prefix_of_a_hostile_response(app: Any, api: httpx.AsyncClient) -> None:
    seen = Seen()
    async with raw_server(endless_body(seen, content_length=None)) as port:
        created = await api.post(
            "/v1/endpoints",
            json={"url": f"http://127.0.0.1:{port}/hook", "event_types": ["uk.send.referral.*"]},
            headers=bearer(CAMHS),
        )
        assert created.status_code == 201, created.text
        await consume(app, referral_event("r13-big", 1, "submitted"))
        async with dispatching(app, timeout=10.0):
            await until(lambda: seen.dropped_at is not None, "the delivery was attempted and the body dropped")
            log_url = f"/v1/endpoints/{created.json()['id']}/deliveries"

            async def succeeded() -> list[Any]:
                return [d for d in (await api.get(log_url, headers=bearer(CAMHS))).json() if d["status"] == "succeeded"]

            deadline = time.monotonic() + 10
            while not (done := await succeeded()):
                assert time.monotonic() < deadline, "the delivery was never recorded"
                await asyncio.sleep(0.1)
    (attempt,) = done[0]["attempt_log"]
    assert attempt["status_code"] == 200
    assert 0 < len(attempt["response_excerpt"]) <= PREFIX_LIMIT


async def test_a_huge_retry_after_is_recorded_not_a_crash(app: Any, api: httpx.AsyncClient) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 429 Too Many\r\nretry-after: 99999999999999999999999\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(handle) as port:
        created = await api.post(
            "/v1/endpoints",
            json={"url": f"http://127.0.0.1:{port}/hook", "event_types": ["*"]},
            headers=bearer(CAMHS),
        )
        await consume(app, referral_event("r13-429", 1, "submitted"))
        log_url = f"/v1/endpoints/{created.json()['id']}/deliveries"
        async with dispatching(app):
            deadline = time.monotonic() + 10
            while not (log := (await api.get(log_url, headers=bearer(CAMHS))).json())[0]["attempt_log"]:
                assert time.monotonic() < deadline, "the 429 attempt was never recorded"
                await asyncio.sleep(0.1)
    assert log[0]["attempt_log"][0]["status_code"] == 429
    next_at = datetime.fromisoformat(log[0]["next_attempt_at"])
    waits = (next_at if next_at.tzinfo else next_at.replace(tzinfo=UTC)) - datetime.now(UTC)  # SQLite: naive UTC
    assert waits.total_seconds() <= 10 * 3600 + 60, "Retry-After is capped at 10 hours"
