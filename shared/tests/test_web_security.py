"""The shared web edge: token checks, rate limits, body limits, and what production exposes."""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ValidationError

from send_devkit.tokens import mint_token
from send_shared import auth as token_checks
from send_shared.auth import (
    SESSION_COOKIE,
    CurrentPrincipal,
    Principal,
    Role,
    TokenVerifier,
    require_roles,
    session_principal,
)
from send_shared.settings import ServiceSettings
from send_shared.web.headers import SecurityHeaders
from send_shared.web.limits import BodySizeLimit
from send_shared.web.ops import ops_router
from send_shared.web.problems import Problem, install_problem_handlers


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(service_name="t", http_port=8999, database_url="sqlite+aiosqlite:///:memory:", **values)


# --- the JWT secret ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["x", "a" * 31, "dev-only-jwt-secret-do-not-use-in-production-0123456789"])
def test_production_refuses_a_short_or_development_hs256_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT"):
        settings(environment="production", jwt_secret=secret)


def test_production_takes_a_32_byte_secret_or_a_jwks_url() -> None:
    assert settings(environment="production", jwt_secret="k" * 32).environment == "production"
    assert settings(environment="production", jwt_secret=None, jwt_jwks_url="https://idp.example/jwks").jwt_jwks_url


def test_a_short_secret_is_fine_outside_production() -> None:
    assert settings(environment="test", jwt_secret="short").jwt_secret is not None


# --- JWKS fetches do not block the event loop ------------------------------------------------------


class SlowJwks(BaseHTTPRequestHandler):
    body = b""
    delay = 0.0
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    SlowJwks.body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    SlowJwks.delay = 1.0
    SlowJwks.fetches = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowJwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", key
    finally:
        server.shutdown()


async def test_a_slow_jwks_fetch_leaves_the_event_loop_free(jwks_server: tuple[str, Any]) -> None:
    url, key = jwks_server
    verifier = TokenVerifier(settings(jwt_secret=None, jwt_jwks_url=url))
    token = jwt.encode(
        {"sub": "u", "org": "org-a", "role": "ops", "aud": "send-referrals", "exp": int(time.time()) + 60},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        principal = await verifier.verify(token)
    finally:
        ticker.cancel()
    assert principal == Principal("u", "org-a", Role.OPS)
    assert ticks >= 10, f"the loop ran only {ticks} times during a one-second key fetch"
    started = time.perf_counter()
    await verifier.verify(token)
    assert SlowJwks.fetches == 1 and time.perf_counter() - started < 0.5, "a known key is not fetched again"


# --- tokens kept once verified ---------------------------------------------------------------------

_SECRET = "dev-only-jwt-secret-do-not-use-in-production-0123456789"


def hs256(org: str, exp: float) -> str:
    claims = {"sub": "u", "org": org, "role": "referrer", "aud": "send-referrals", "exp": int(exp)}
    return jwt.encode(claims, _SECRET, algorithm="HS256")


async def test_a_kept_token_is_refused_once_it_expires() -> None:
    verifier = TokenVerifier(settings())
    expires = int(time.time()) + 1
    token = hs256("org-a", expires)
    assert (await verifier.verify(token)).organisation_id == "org-a"
    await asyncio.sleep(expires - time.time() + 0.05)
    with pytest.raises(Problem) as refused:
        await verifier.verify(token)
    assert refused.value.status == 401


async def test_a_kept_token_expires_when_pyjwt_says_so_whatever_its_exp() -> None:
    """PyJWT reads ``exp`` as a whole second: one with a fraction is refused from that second on, kept or not; and
    an ``exp`` far beyond any float is a token like another."""
    verifier = TokenVerifier(settings())
    expires = int(time.time()) + 1
    claims = {"sub": "u", "org": "org-a", "role": "referrer", "aud": "send-referrals"}
    fractional = jwt.encode({**claims, "exp": expires + 0.9}, _SECRET, algorithm="HS256")
    far = jwt.encode({**claims, "exp": 10**400}, _SECRET, algorithm="HS256")
    assert (await verifier.verify(fractional)).organisation_id == "org-a"
    assert (await verifier.verify(far)).organisation_id == "org-a"
    await asyncio.sleep(expires - time.time() + 0.05)
    with pytest.raises(Problem):
        await verifier.verify(fractional)
    assert (await verifier.verify(far)).organisation_id == "org-a"


async def test_only_the_very_token_verified_is_taken_as_kept() -> None:
    verifier = TokenVerifier(settings())
    token = hs256("org-a", time.time() + 60)
    await verifier.verify(token)
    head, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({**jwt.decode(token, options={"verify_signature": False}), "org": "org-b"}).encode()
    ).decode()
    other_signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    for forged in (f"{head}.{forged_payload}.{signature}", f"{head}.{payload}.{other_signature}"):
        with pytest.raises(Problem):
            await verifier.verify(forged)


async def test_the_tokens_kept_are_bounded_and_the_oldest_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_checks, "VERIFIED_KEPT", 2)
    verifier = TokenVerifier(settings())
    tokens = [hs256(f"org-{n}", time.time() + 60) for n in range(3)]
    for token in tokens:
        await verifier.verify(token)

    def no_more_checks(*_: Any, **__: Any) -> dict[str, Any]:
        raise jwt.InvalidTokenError("the signing key was withdrawn")

    monkeypatch.setattr(token_checks.jwt, "decode", no_more_checks)
    assert [(await verifier.verify(t)).organisation_id for t in tokens[1:]] == ["org-1", "org-2"]
    with pytest.raises(Problem):
        await verifier.verify(tokens[0])


# --- the bearer scheme and rate limits -------------------------------------------------------------


def limited_app(**limits: Any) -> FastAPI:
    app = FastAPI()
    app.state.verifier = TokenVerifier(settings(**limits))
    install_problem_handlers(app)
    caller = Annotated[Principal, Depends(require_roles(Role.REFERRER))]

    @app.get("/things")
    async def read(who: caller) -> dict[str, str]:
        return {"org": who.organisation_id}

    @app.post("/things")
    async def write(who: caller) -> dict[str, str]:
        return {"org": who.organisation_id}

    @app.get("/me")
    async def me(who: CurrentPrincipal) -> dict[str, str]:
        return {"org": who.organisation_id}

    @app.get("/page", include_in_schema=False)  # a page: signed in by cookie, not in the API document
    async def page(request: Request) -> dict[str, str | None]:
        who = await session_principal(request, app.state.verifier)
        return {"org": who.organisation_id if who else None}

    return app


def auth(org: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, 'referrer')}"}


@pytest.fixture
async def limited() -> AsyncIterator[httpx.AsyncClient]:
    app = limited_app(
        rate_limit_writes_per_second=0.5,
        rate_limit_write_burst=2,
        rate_limit_reads_per_second=0.5,
        rate_limit_read_burst=3,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


def test_every_authenticated_route_declares_the_bearer_scheme() -> None:
    document = limited_app().openapi()
    schemes = document["components"]["securitySchemes"]
    assert [s for s in schemes.values() if s == {**s, "type": "http", "scheme": "bearer"}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("security"), f"{method.upper()} {path} declares no security"


async def test_missing_or_malformed_credentials_are_401_problems(limited: httpx.AsyncClient) -> None:
    for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer "}, {"authorization": "Bearer x.y"}):
        response = await limited.get("/things", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_an_organisation_over_its_write_limit_gets_429_with_retry_after(limited: httpx.AsyncClient) -> None:
    assert [(await limited.post("/things", headers=auth("org-a"))).status_code for _ in range(2)] == [200, 200]
    refused = await limited.post("/things", headers=auth("org-a"))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    # Another organisation has its own budget, and reads are counted apart from writes.
    assert (await limited.post("/things", headers=auth("org-b"))).status_code == 200
    assert [(await limited.get("/things", headers=auth("org-a"))).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert (await limited.get("/me", headers=auth("org-a"))).status_code == 429


async def test_a_page_read_with_the_session_cookie_spends_the_same_budget(limited: httpx.AsyncClient) -> None:
    """Pages sign people in by cookie (``session_principal``): their reads count against the organisation's
    read budget like an API read, and over it the answer is a 429 problem with Retry-After."""
    cookie = {"cookie": f"{SESSION_COOKIE}={mint_token('org-a', 'referrer')}"}
    assert [(await limited.get("/page", headers=cookie)).status_code for _ in range(2)] == [200, 200]
    assert (await limited.get("/things", headers=auth("org-a"))).status_code == 200  # the third read of org-a
    refused = await limited.get("/page", headers=cookie)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert (await limited.get("/things", headers=auth("org-a"))).status_code == 429, "one budget for both"
    other = {"cookie": f"{SESSION_COOKIE}={mint_token('org-b', 'referrer')}"}
    assert (await limited.get("/page", headers=other)).status_code == 200
    assert (await limited.get("/page")).status_code == 200, "no session: the sign-in answer, no budget to spend"


async def test_the_budget_refills_with_time(limited: httpx.AsyncClient) -> None:
    for _ in range(2):
        await limited.post("/things", headers=auth("org-a"))
    refused = await limited.post("/things", headers=auth("org-a"))
    await asyncio.sleep(float(refused.headers["retry-after"]))
    assert (await limited.post("/things", headers=auth("org-a"))).status_code == 200


# --- request bodies ----------------------------------------------------------------------------


class Thing(BaseModel):
    name: str


def body_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def create(thing: Thing) -> dict[str, str]:
        return {"name": thing.name}

    app.add_middleware(BodySizeLimit, max_bytes=1024)
    return app


async def chunks(body: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_chunked_body_over_the_limit_is_413_and_one_under_it_is_read() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=body_app()), base_url="http://t") as client:
        big = json.dumps({"name": "x" * 2000}).encode()
        refused = await client.post("/things", content=chunks(big), headers={"content-type": "application/json"})
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        small = json.dumps({"name": "ok"}).encode()
        taken = await client.post("/things", content=chunks(small, 3), headers={"content-type": "application/json"})
        assert taken.status_code == 200 and taken.json() == {"name": "ok"}
        declared = await client.post("/things", content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413


async def test_an_unexpected_error_is_a_500_problem_with_the_security_headers() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(SecurityHeaders)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        failed = await client.get("/boom")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "a bug" not in failed.text
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert failed.headers["content-security-policy"].startswith("default-src 'none'")


# --- what production exposes -----------------------------------------------------------------------


async def test_metrics_ask_for_their_token_when_one_is_set() -> None:
    app = FastAPI()
    app.include_router(ops_router({}, dict, metrics_token="s3cret-token"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 401
        shown = await client.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
        assert shown.status_code == 200 and "python_info" in shown.text


def test_production_serves_no_interactive_docs_unless_asked() -> None:
    secret = "k" * 32
    assert settings(environment="production", jwt_secret=secret).serves_api_docs is False
    assert settings(environment="production", jwt_secret=secret, api_docs=True).serves_api_docs is True
    assert settings(environment="development").serves_api_docs is True


@pytest.mark.parametrize(
    "claims", [{"sub": "a\x00b"}, {"sub": "é"}, {"org": "org\r\nx"}, {"org": "o" * 65}, {"sub": 7}]
)
async def test_claims_that_are_not_visible_ascii_are_401(claims: dict[str, Any]) -> None:
    token = jwt.encode(
        {
            "sub": "u",
            "org": "org-a",
            "role": "referrer",
            "aud": "send-referrals",
            "exp": int(time.time()) + 60,
            **claims,
        },
        "dev-only-jwt-secret-do-not-use-in-production-0123456789",
        algorithm="HS256",
    )
    app = limited_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"


async def test_requests_are_traced_by_route_in_the_callers_trace_but_never_a_secret_path() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from send_shared.service import http_telemetry

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = FastAPI(telemetry=http_telemetry(("/family/",)) | {"tracer_provider": provider})

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/family/{token}")
    async def family(token: str) -> dict[str, str]:
        return {"token": token}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent = {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    behind_a_proxy = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=behind_a_proxy, base_url="http://t") as client:
        assert (await client.get("/api/v1/things/t-1", headers=parent)).status_code == 200
        assert (await client.get("/api/family/9Zx-secret", headers=parent)).status_code == 200
        assert (await client.get("/api/readyz")).status_code == 200
        assert (await client.get("/api/v1/things/t-2", params={"next": "/family/x"})).status_code == 200
    first, second = spans.get_finished_spans()
    assert first.name == "GET /api/v1/things/{thing_id}" and first.attributes is not None
    assert first.attributes["http.route"] == "/api/v1/things/{thing_id}"
    assert first.attributes["http.response.status_code"] == 200
    assert f"{first.context.trace_id:032x}" == trace_id
    assert second.name == "GET /api/v1/things/{thing_id}" and second.attributes is not None
    assert "secret" not in str(dict(second.attributes))
