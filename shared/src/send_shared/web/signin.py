"""Sign-in for the pages people use in a browser (the operations dashboard), with a session cookie.

- **Production: OpenID Connect**, authorization code flow with PKCE (S256), against the identity
  provider at ``OIDC_ISSUER`` (found by discovery). The provider's access token must be a JWT for this
  API (the ``aud``, ``org`` and ``role`` claims API tokens carry); it is verified like any bearer token
  and kept in an HttpOnly, SameSite=Lax cookie, so it never appears in a URL or in the page's script.
- **Development: a local sign-in page** listing the organisations this service knows, which issues a
  development token (refused in production).

The cookie is accepted only for reading (GET and HEAD): a write still needs the ``Authorization``
header, so a cross-site form cannot act with someone's session. PKCE and state values come from
``authlib``; the two HTTP calls (discovery and the token exchange) use httpx.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from send_shared.auth import SESSION_COOKIE, Role, TokenVerifier, development_token, token_verifier
from send_shared.settings import ServiceSettings
from send_shared.web.problems import Problem

FLOW_COOKIE = "send_signin"
FLOW_SECONDS = 600
ROLE_NAMES = {Role.REFERRER: "referrer (a school)", Role.RECEIVER: "receiving service", Role.OPS: "operations staff",
              Role.ADMIN: "organisation administrator"}  # fmt: skip
OrganisationNames = Callable[[], Awaitable[list[tuple[str, str]]]]
_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


# A form that posts here must send its Origin: under the services' default "no-referrer" browsers send
# "Origin: null", which _same_origin refuses. Pages with such forms use "same-origin" (nothing leaves the site).
PAGE_HEADERS = {"content-security-policy": _PAGE_POLICY, "cache-control": "no-store", "referrer-policy": "same-origin"}


def local_path(target: str | None, default: str) -> str:
    """Only a path on this service (never ``//elsewhere`` or a URL): sign-in must not become an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def signin_router(
    settings: ServiceSettings, organisations: OrganisationNames, *, landing: str, roles: tuple[Role, ...]
) -> APIRouter:
    """``/signin`` (OIDC, or the development page), ``/signin/callback``, ``/signin/development`` and ``/signout``.
    ``landing`` is where a person goes after signing in when the link did not say; ``roles`` are the ones the
    development page offers (the pages of this service are for them)."""
    router = APIRouter(include_in_schema=False)
    secure = settings.environment == "production"

    def set_session(response: Response, token: str, lifetime: int) -> None:
        # Lax, not Strict: the page the identity provider sends a person back to must receive the cookie (a
        # Strict one is withheld after a cross-site redirect, and a page would send them to sign in again). The
        # cookie authorises reads only, so a cross-site request gains nothing it could change.
        response.set_cookie(SESSION_COOKIE, token, max_age=max(lifetime, 0), httponly=True, secure=secure,
                            samesite="lax", path="/")  # fmt: skip

    @router.get("/signin")
    async def signin(request: Request, next: str | None = None) -> Response:
        target = local_path(next, landing)
        if settings.oidc_issuer:
            return await _to_identity_provider(request, settings, target, secure)
        if settings.environment == "production":
            raise Problem(404, "Sign-in is not configured", "set OIDC_ISSUER and OIDC_CLIENT_ID", kind="not-found")
        return _development_page(await organisations(), target, roles)

    @router.post("/signin/development")
    async def development_signin(request: Request) -> Response:
        if settings.environment == "production" or settings.oidc_issuer:
            raise Problem(404, "Not found", "the development sign-in is off", kind="not-found")
        _same_origin(request)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        known = dict(await organisations())
        organisation, role = form.get("organisation", ""), form.get("role", "")
        if organisation not in known or role not in {r.value for r in roles}:
            raise Problem(422, "Unknown organisation or role", "choose one of the listed organisations and roles",
                          kind="validation")  # fmt: skip
        ttl = 8 * 3600
        response = RedirectResponse(local_path(form.get("next"), landing), status_code=303)
        set_session(response, development_token(settings, organisation, Role(role), ttl_seconds=ttl), ttl)
        return response

    @router.get("/signin/callback")
    async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        flow = parse_qs(request.cookies.get(FLOW_COOKIE, ""))
        expected = flow.get("state", [""])[0]
        if error or not code or not expected or not secrets.compare_digest(state, expected):
            raise Problem(400, "Sign-in failed", error or "the sign-in link is stale or was not started here",
                          kind="signin-failed")  # fmt: skip
        token = await _exchange(settings, code, flow["verifier"][0], _redirect_uri(request, settings))
        verifier: TokenVerifier = await token_verifier(request)
        await verifier.verify(token)  # the provider's token must be one this API accepts
        lifetime = int(verifier.expiry(token) - time.time())
        response = RedirectResponse(local_path(flow.get("next", [""])[0], landing), status_code=303)
        set_session(response, token, lifetime)
        response.delete_cookie(FLOW_COOKIE, path="/signin")
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        _same_origin(request)
        response = RedirectResponse(f"/signin?{urlencode({'next': landing})}", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Problem(403, "Forbidden", "cross-site form posts are refused", kind="forbidden")


def _redirect_uri(request: Request, settings: ServiceSettings) -> str:
    base = settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
    return f"{base.rstrip('/')}/signin/callback"


_DISCOVERY: dict[str, dict[str, Any]] = {}


async def _provider(settings: ServiceSettings) -> dict[str, Any]:
    issuer = str(settings.oidc_issuer).rstrip("/")
    if issuer not in _DISCOVERY:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(f"{issuer}/.well-known/openid-configuration")
        answer.raise_for_status()
        _DISCOVERY[issuer] = answer.json()
    return _DISCOVERY[issuer]


async def _to_identity_provider(request: Request, settings: ServiceSettings, target: str, secure: bool) -> Response:
    provider = await _provider(settings)
    state, verifier = generate_token(32), generate_token(64)
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": _redirect_uri(request, settings),
        "scope": settings.oidc_scope,
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    response = RedirectResponse(f"{provider['authorization_endpoint']}?{urlencode(query)}", status_code=303)
    response.set_cookie(FLOW_COOKIE, urlencode({"state": state, "verifier": verifier, "next": target}),
                        max_age=FLOW_SECONDS, httponly=True, secure=secure, samesite="lax", path="/signin")  # fmt: skip
    return response


async def _exchange(settings: ServiceSettings, code: str, verifier: str, redirect_uri: str) -> str:
    provider = await _provider(settings)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": settings.oidc_client_id, "code_verifier": verifier}  # fmt: skip
    secret = settings.oidc_client_secret
    auth = httpx.BasicAuth(str(settings.oidc_client_id), secret.get_secret_value()) if secret is not None else None
    async with httpx.AsyncClient(timeout=10, auth=auth) as client:
        answer = await client.post(provider["token_endpoint"], data=form)
    if answer.status_code != 200:
        raise Problem(502, "Sign-in failed", f"the identity provider refused the code ({answer.status_code})",
                      kind="signin-failed")  # fmt: skip
    token = answer.json().get("access_token")
    if not isinstance(token, str):
        raise Problem(502, "Sign-in failed", "the identity provider sent no access token", kind="signin-failed")
    return token


def _development_page(organisations: list[tuple[str, str]], target: str, roles: tuple[Role, ...]) -> HTMLResponse:
    options = "".join(
        f'<option value="{html.escape(org_id)}">{html.escape(name)} ({html.escape(org_id)})</option>'
        for org_id, name in sorted(organisations, key=lambda o: o[1])
    )
    choices = "".join(
        f'<label><input type="radio" name="role" value="{r.value}"{" checked" if i == 0 else ""}> '
        f"{html.escape(ROLE_NAMES.get(r, r.value))}</label>"
        for i, r in enumerate(roles)
    )
    page = f"""<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in (development)</title>
<style>body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:.5rem 0}}select,button{{font:inherit;padding:.4rem}}fieldset{{border:1px solid #767676}}</style>
</head><body><main>
<h1>Sign in</h1>
<p>Development sign-in: choose who to be. In production this page sends you to your organisation's identity
provider instead.</p>
<form method="post" action="/signin/development">
<input type="hidden" name="next" value="{html.escape(target)}">
<label for="organisation">Organisation</label>
<select id="organisation" name="organisation" required>{options}</select>
<fieldset><legend>Role</legend>{choices}</fieldset>
<button type="submit">Sign in</button>
</form></main></body></html>"""
    return HTMLResponse(page, headers=PAGE_HEADERS)
