"""Issue #13, DNS rebinding over HTTPS: the connection goes to the address that was checked, while TLS
SNI, certificate verification and the Host header are for the URL's host name.

A local HTTPS receiver with a certificate for ``hooks.test`` only (issued here by a throwaway CA) listens
on 127.0.0.1, a second one on 127.0.0.2 (the address the name "rebinds" to after the check). The oracle
is what the receivers see: the server name the client sent in its TLS handshake and the request's Host.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notifications.adapters.webhook_client import WebhookClient

NAME = "hooks.test"
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def issue(name: str) -> Pki:
    """A CA and a server certificate for ``name`` (DNS name only, no IP address) signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEND test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclass
class Receiver:
    server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake
    requests: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def https_receiver(pki: Pki, host: str, port: int, tmp: Any) -> AsyncIterator[tuple[Receiver, int]]:
    seen = Receiver()
    (tmp / "cert.pem").write_bytes(pki.cert_pem)
    (tmp / "key.pem").write_bytes(pki.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")

    def record_sni(_obj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.server_names.append(server_name)

    context.sni_callback = record_sni  # type: ignore[assignment]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            await reader.readexactly(int(headers.get("content-length", "0")))
            seen.requests.append(headers)
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, ssl=context)
    try:
        yield seen, server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every test name answers 127.0.0.1 the first time and 127.0.0.2 after (the rebinding attack)."""
    asked: dict[str, int] = {}
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.endswith(".test"):
            asked[name] = asked.get(name, 0) + 1
            return real("127.0.0.1" if asked[name] == 1 else "127.0.0.2", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a TCP connection is opened to, whichever HTTP client opens it: asyncio's event loop
    connects every TCP socket through ``sock_connect``."""
    made: list[str] = []
    real = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    async def recording(loop: Any, sock: socket.socket, address: Any) -> None:
        made.append(str(address[0]))
        await real(loop, sock, address)

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", recording)
    return made


def trusting(pki: Pki) -> WebhookClient:
    context = ssl.create_default_context(cadata=pki.ca_pem.decode())
    return WebhookClient(require_https=True, allow_private=True, timeout=5.0, ssl_context=context)


async def send(c: WebhookClient, url: str) -> Any:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return await c.send(url, webhook_id="msg_1", body='{"a":1}', secrets_in_use=[secret], now=datetime.now(UTC))


async def test_https_goes_to_the_checked_address_with_sni_and_host_for_the_name(
    rebinding_dns: dict[str, int], connections: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    pki = issue(NAME)
    c = trusting(pki)
    try:
        async with (
            https_receiver(pki, "127.0.0.1", 0, tmp_path_factory.mktemp("checked")) as (checked, port),
            https_receiver(pki, "127.0.0.2", port, tmp_path_factory.mktemp("rebound")) as (rebound, _),
        ):
            attempt = await send(c, f"https://{NAME}:{port}/hook")
    finally:
        await c.close()
    assert attempt.status_code == 204, attempt.error
    assert connections == ["127.0.0.1"], f"connected to {connections}, not only to the checked address"
    assert rebinding_dns == {NAME: 1}, "the name was resolved again after the check"
    assert rebound.server_names == [] and rebound.requests == []
    assert checked.server_names == [NAME], "TLS SNI must carry the host name, not the address"
    assert [r["host"] for r in checked.requests] == [f"{NAME}:{port}"], "the Host header keeps the name"


async def test_the_certificate_is_verified_for_the_name_not_the_address(
    rebinding_dns: dict[str, int], connections: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The checked address serves a certificate for another name: the attempt fails, nothing is sent."""
    pki = issue(NAME)
    c = trusting(pki)
    try:
        async with https_receiver(pki, "127.0.0.1", 0, tmp_path_factory.mktemp("wrong")) as (seen, port):
            attempt = await send(c, f"https://elsewhere.test:{port}/hook")
    finally:
        await c.close()
    assert attempt.status_code is None
    assert attempt.error is not None and "certificate" in attempt.error.lower(), attempt.error
    assert connections == ["127.0.0.1"]
    assert seen.server_names == ["elsewhere.test"] and seen.requests == []
