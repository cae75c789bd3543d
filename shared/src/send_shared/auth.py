"""Bearer-token identity shared by every service's API.

A token is a JWT whose claims carry the caller's organisation and role:
``{"sub": "...", "org": "<organisation id>", "role": "referrer|receiver|ops|admin|platform_admin", "exp": ...}``.
``admin`` administers its own organisation (its services, its audit log); ``platform_admin`` keeps the
directory of organisations and services for everyone and sees no referral.
Development signs with HS256 and a configured secret (``send-token`` in the development kit mints one);
production verifies RS256/ES256 tokens against keys from a JWKS URL.
"""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from send_shared.events.schemas import DIRECTORY_ID_PATTERN
from send_shared.settings import DEV_JWT_SECRET, ServiceSettings
from send_shared.web.problems import Problem
from send_shared.web.rate_limits import SAFE_METHODS, RateLimits

DEV_SECRET = DEV_JWT_SECRET
SESSION_COOKIE = "send_session"  # set by send_shared.web.signin; holds a token like a bearer header's


class Role(StrEnum):
    REFERRER = "referrer"
    RECEIVER = "receiver"
    OPS = "ops"
    ADMIN = "admin"
    PLATFORM_ADMIN = "platform_admin"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    organisation_id: str
    role: Role


VERIFIED_KEPT = 4096  # tokens whose caller is kept until they expire; a client reuses its token for every call


class TokenVerifier:
    """Checks bearer tokens. JWKS keys are fetched off the event loop (PyJWKClient uses blocking urllib)
    and kept by key id, so a verified caller costs no thread hop once its key is known.

    A token that verified is kept, with its caller, until its ``exp`` (the newest ``VERIFIED_KEPT`` tokens): a
    client sends the same token with every call, and checking its signature and claims again was a tenth of a
    submission's work in the API process. Only the very same token string is taken from what is kept, so its
    signature was checked; nothing else about a token can change before it expires."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.limits = RateLimits.from_settings(settings)
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self._keys: dict[str, Any] = {}
        self._fetching = asyncio.Lock()
        self._verified: dict[str, tuple[Principal, int]] = {}

    async def verify(self, token: str) -> Principal:
        if (kept := self._verified.get(token)) is not None:
            if time.time() < kept[1]:  # PyJWT's rule: a token expires at its exp
                return kept[0]
            del self._verified[token]
        principal, expires = await self._check(token)
        if len(self._verified) >= VERIFIED_KEPT:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires)
        return principal

    async def _check(self, token: str) -> tuple[Principal, int]:
        try:
            if self._jwks is not None:
                key: Any = await self._jwks_key(token)
                algorithms = ["RS256", "ES256"]
            elif self.settings.jwt_secret is not None:
                key = self.settings.jwt_secret.get_secret_value()
                algorithms = ["HS256"]
            else:
                raise jwt.InvalidTokenError("no verification key configured")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "org", "role"]},
            )
            principal = Principal(
                subject=_claim(claims, "sub", 254), organisation_id=_claim(claims, "org", 64), role=Role(claims["role"])
            )
            return principal, int(claims["exp"])  # as PyJWT reads it: a fraction of a second is dropped
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _unauthorised(str(exc)) from exc

    @staticmethod
    def expiry(token: str) -> float:
        """The ``exp`` of a token already verified (seconds since the epoch)."""
        return float(jwt.decode(token, options={"verify_signature": False})["exp"])

    async def _jwks_key(self, token: str) -> Any:
        assert self._jwks is not None
        kid = str(jwt.get_unverified_header(token).get("kid", ""))
        if kid not in self._keys:
            async with self._fetching:
                if kid not in self._keys:
                    signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                    self._keys[kid] = signing.key
        return self._keys[kid]


_DIRECTORY_ID = re.compile(DIRECTORY_ID_PATTERN)
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def _claim(claims: dict[str, Any], name: str, longest: int) -> str:
    """Claims end up in the audit log, logs and queries: visible ASCII only, and bounded."""
    value = claims[name]
    if not isinstance(value, str) or len(value) > longest or not _PRINTABLE.fullmatch(value):
        raise jwt.InvalidTokenError(f"the {name} claim must be 1 to {longest} visible ASCII characters")
    return value


def _unauthorised(detail: str) -> Problem:
    return Problem(401, "Unauthorised", detail, kind="unauthorised", headers={"WWW-Authenticate": "Bearer"})


def signed_token(
    secret: str, organisation_id: str, role: Role | str, *, audience: str, subject: str | None, ttl_seconds: int
) -> str:
    """An HS256 token with the claims this API reads (development and tests; production tokens come from
    the identity provider)."""
    now = int(time.time())
    claims = {
        "sub": subject or f"user@{organisation_id}",
        "org": organisation_id,
        "role": Role(role).value,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def development_token(settings: ServiceSettings, organisation_id: str, role: Role, *, ttl_seconds: int) -> str:
    """A token for the development sign-in page; never in production."""
    if settings.environment == "production" or settings.jwt_secret is None:
        raise RuntimeError("development tokens are not issued in production")
    return signed_token(
        settings.jwt_secret.get_secret_value(), organisation_id, role,
        audience=settings.jwt_audience, subject=None, ttl_seconds=ttl_seconds,
    )  # fmt: skip


_BEARER = HTTPBearer(auto_error=False, description="A JWT naming the caller's organisation (`org`) and `role`.")


# The dependencies here and in the services are ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, and a thread hop per dependency per request cost a sixth of a submission's time.
async def token_verifier(request: Request) -> TokenVerifier:
    """The app's verifier (``app.state.verifier``, set by ``create_app``); tests may override this."""
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    verifier: Annotated[TokenVerifier, Depends(token_verifier)],
) -> Principal:
    """The caller, or a 401 problem; it also spends the caller's organisation's rate limit (writes, or
    reads), so every authenticated route is limited. Tests override this to act as anyone. A signed-in
    browser's session cookie stands for the bearer token on reads only (a cross-site form cannot write)."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token and request.method in SAFE_METHODS:
        token = request.cookies.get(SESSION_COOKIE, "").strip()
    if not token:
        raise _unauthorised("a bearer token is required")
    principal = await verifier.verify(token)
    verifier.limits.spend(principal.organisation_id, write=request.method not in SAFE_METHODS)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
PrincipalCheck = Callable[..., Awaitable[Principal]]


def ensure_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        raise Problem(403, "Forbidden", f"role {principal.role.value} may not do this", kind="forbidden")
    return principal


def require_roles(*roles: Role) -> PrincipalCheck:
    async def check(principal: CurrentPrincipal) -> Principal:
        return ensure_role(principal, roles)

    return check


OrganisationLookup = Callable[[str], Awaitable[bool]]


async def organisation_lookup(request: Request) -> OrganisationLookup:
    """Whether an organisation is in the directory as this service knows it (``app.state.organisation_lookup``,
    set by each service's bootstrap)."""
    lookup: OrganisationLookup = request.app.state.organisation_lookup
    return lookup


async def ensure_known(principal: Principal, is_known: OrganisationLookup) -> Principal:
    """The caller's organisation must be in the directory as this service knows it: a token for an organisation
    nobody registered is refused (403), whatever it claims; an id no directory could hold is refused without
    asking the lookup."""
    org = principal.organisation_id
    if not _DIRECTORY_ID.fullmatch(org) or not await is_known(org):
        raise Problem(
            403,
            "Unknown organisation",
            "the token's organisation is not in the directory: ask a platform administrator to register it",
            kind="unknown-organisation",
        )
    return principal


def require_known_roles(*roles: Role) -> PrincipalCheck:
    """Like ``require_roles``, and the caller's organisation must be in the directory (``ensure_known``)."""
    check = require_roles(*roles)

    async def known(
        principal: Annotated[Principal, Depends(check)],
        is_known: Annotated[OrganisationLookup, Depends(organisation_lookup)],
    ) -> Principal:
        return await ensure_known(principal, is_known)

    return known


async def session_principal(request: Request, verifier: TokenVerifier) -> Principal | None:
    """Who a browser's session cookie says is signed in; None without a cookie or with one no longer valid
    (a page then sends the person to sign in rather than answering 401). Like ``current_principal``, it spends
    the organisation's rate limit (a 429 problem with ``Retry-After`` once it is used up)."""
    token = request.cookies.get(SESSION_COOKIE, "").strip()
    if not token:
        return None
    try:
        principal = await verifier.verify(token)
    except Problem:
        return None
    verifier.limits.spend(principal.organisation_id, write=request.method not in SAFE_METHODS)
    return principal
