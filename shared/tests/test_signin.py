"""Browser sign-in: OpenID Connect with PKCE against a real local identity provider, and the development page.

The identity provider below is a small but real one, served over HTTP on a free port: discovery, an
authorization endpoint that approves at once, a token endpoint that checks the PKCE verifier against the
challenge it was shown (RFC 7636, worked out here with hashlib, not with the code under test) and a JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from send_devkit.ports import free_port
from send_shared.auth import SESSION_COOKIE, CurrentPrincipal, Principal, Role, TokenVerifier, require_roles
from send_shared.settings import ServiceSettings
from send_shared.web.problems import install_problem_handlers
from send_shared.web.signin import signin_router


class IdentityProvider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.codes: dict[str, dict[str, str]] = {}
        self.exchanges: list[dict[str, str]] = []
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
        ])  # fmt: skip

    async def discovery(self, _: Any) -> Response:
        return JSONResponse({"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                             "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks"})  # fmt: skip

    async def authorize(self, request: Any) -> Response:
        q = request.query_params
        assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "client": q["client_id"],
        }
        return RedirectResponse(f"{q['redirect_uri']}?code={code}&state={q['state']}", status_code=302)

    async def token(self, request: Any) -> Response:
        form = dict(await request.form())
        self.exchanges.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"sub": "alex@northshire", "org": "org-northshire-la", "role": "ops", "aud": "send-referrals",
                  "iss": self.issuer, "iat": now, "exp": now + 600}  # fmt: skip
        access = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 600})

    async def jwks(self, _: Any) -> Response:
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]})


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider()
    server = uvicorn.Server(uvicorn.Config(idp.app, host="127.0.0.1", port=idp.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield idp
    server.should_exit = True
    thread.join(5)


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(service_name="t", http_port=1, database_url="sqlite+aiosqlite://", **values)


async def organisations() -> list[tuple[str, str]]:
    return [("org-northshire-la", "Northshire County Council"), ("org-riverside-primary", "Riverside Primary")]


def app_for(config: ServiceSettings) -> FastAPI:
    app = FastAPI()
    app.state.verifier = TokenVerifier(config)
    install_problem_handlers(app)
    app.include_router(signin_router(config, organisations, landing="/dashboard/", roles=(Role.OPS, Role.ADMIN)))

    @app.get("/me")
    async def me(who: Annotated[Principal, Depends(require_roles(Role.OPS, Role.ADMIN))]) -> dict[str, str]:
        return {"org": who.organisation_id, "role": who.role.value}

    @app.post("/me")
    async def write(who: CurrentPrincipal) -> dict[str, str]:
        return {"org": who.organisation_id}

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash.test")


async def test_oidc_sign_in_with_pkce_gives_a_session_for_reading_only(provider: IdentityProvider) -> None:
    config = settings(oidc_issuer=provider.issuer, oidc_client_id="dashboard", jwt_secret=None,
                      jwt_jwks_url=f"{provider.issuer}/jwks", jwt_issuer=provider.issuer)  # fmt: skip
    async with client(app_for(config)) as dash, httpx.AsyncClient() as browser:
        start = await dash.get("/signin", params={"next": "/me"})
        assert start.status_code == 303
        to_idp = start.headers["location"]
        assert to_idp.startswith(f"{provider.issuer}/authorize?")
        assert "code_verifier" not in to_idp and SESSION_COOKIE not in start.cookies
        back = await browser.get(to_idp)
        assert back.status_code == 302
        callback = urlsplit(back.headers["location"])
        assert callback.netloc == "dash.test" and callback.path == "/signin/callback"
        signed_in = await dash.get(f"/signin/callback?{callback.query}")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/me"
        cookie = signed_in.headers["set-cookie"]
        assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "code=" not in signed_in.headers["location"] and "token" not in signed_in.headers["location"]
        assert (await dash.get("/me")).json() == {"org": "org-northshire-la", "role": "ops"}
        assert (await dash.post("/me")).status_code == 401, "a session cookie must not authorise a write"
    (exchange,) = provider.exchanges
    assert exchange["redirect_uri"] == "http://dash.test/signin/callback" and len(exchange["code_verifier"]) >= 43


async def test_a_callback_not_started_here_or_replayed_is_refused(provider: IdentityProvider) -> None:
    config = settings(oidc_issuer=provider.issuer, oidc_client_id="dashboard", jwt_secret=None,
                      jwt_jwks_url=f"{provider.issuer}/jwks", jwt_issuer=provider.issuer)  # fmt: skip
    async with client(app_for(config)) as dash, httpx.AsyncClient() as browser:
        start = await dash.get("/signin")
        callback = urlsplit((await browser.get(start.headers["location"])).headers["location"])
        query = parse_qs(callback.query)
        forged = await dash.get("/signin/callback", params={"code": query["code"][0], "state": "forged"})
        assert forged.status_code == 400 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")
        dash.cookies.clear()
        unstarted = await dash.get(f"/signin/callback?{callback.query}")
        assert unstarted.status_code == 400


async def test_development_sign_in_lists_organisations_and_goes_only_to_local_pages() -> None:
    async with client(app_for(settings())) as dash:
        page = await dash.get("/signin", params={"next": "//evil.example/"})
        assert page.status_code == 200 and "Riverside Primary" in page.text
        assert 'value="/dashboard/"' in page.text, "an outside next must fall back to the landing page"
        assert "script" not in page.headers["content-security-policy"].replace("script-src", "")
        form = {"organisation": "org-northshire-la", "role": "ops", "next": "/me"}
        signed_in = await dash.post("/signin/development", data=form)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/me"
        assert (await dash.get("/me")).json() == {"org": "org-northshire-la", "role": "ops"}
        signed_out = await dash.post("/signout")
        assert signed_out.status_code == 303
        assert (await dash.get("/me")).status_code == 401
        unknown = await dash.post("/signin/development", data={**form, "organisation": "org-nobody"})
        assert unknown.status_code == 422
        referrer = await dash.post("/signin/development", data={**form, "role": "referrer"})
        assert referrer.status_code == 422
        cross_site = await dash.post("/signin/development", data=form, headers={"origin": "https://evil.example"})
        assert cross_site.status_code == 403


async def test_production_offers_no_development_sign_in() -> None:
    config = settings(environment="production", jwt_secret="x" * 40)
    async with client(app_for(config)) as dash:
        assert (await dash.get("/signin")).status_code == 404
        form = {"organisation": "org-northshire-la", "role": "ops"}
        assert (await dash.post("/signin/development", data=form)).status_code == 404


def test_the_issuer_needs_a_client_id() -> None:
    with pytest.raises(ValueError, match="OIDC_CLIENT_ID"):
        settings(oidc_issuer="https://idp.example")
