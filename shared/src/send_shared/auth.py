"""Bearer-token identity shared by every service's API.

A token is a JWT whose claims carry the caller's organisation and role:
``{"sub": "...", "org": "<organisation id>", "role": "referrer|receiver|ops|admin|platform_admin", "exp": ...}``.
``admin`` administers its own organisation (its services, its audit log); ``platform_admin`` keeps the
directory of organisations and services for everyone and sees no referral.
Development signs with HS256 and a configured secret (``send-token`` mints one);
production verifies RS256/ES256 tokens against keys from a JWKS URL.
"""

import argparse
import asyncio
import os
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


class TokenVerifier:
    """Checks bearer tokens. JWKS keys are fetched off the event loop (PyJWKClient uses blocking urllib)
    and kept by key id, so a verified caller costs no thread hop once its key is known."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.limits = RateLimits.from_settings(settings)
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self._keys: dict[str, Any] = {}
        self._fetching = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
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
            return Principal(
                subject=_claim(claims, "sub", 254), organisation_id=_claim(claims, "org", 64), role=Role(claims["role"])
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _unauthorised(str(exc)) from exc

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


def mint_token(
    organisation_id: str,
    role: Role | str,
    *,
    secret: str = DEV_SECRET,
    audience: str = "send-referrals",
    subject: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
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


_BEARER = HTTPBearer(auto_error=False, description="A JWT naming the caller's organisation (`org`) and `role`.")


def principal_dependency(verifier: TokenVerifier) -> Any:
    """A FastAPI dependency returning the caller, or a 401 problem; it also spends the caller's
    organisation's rate limit (writes, or reads), so every authenticated route is limited."""

    async def current_principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> Principal:
        if credentials is None or not credentials.credentials.strip():
            raise _unauthorised("a bearer token is required")
        principal = await verifier.verify(credentials.credentials.strip())
        verifier.limits.spend(principal.organisation_id, write=request.method not in SAFE_METHODS)
        return principal

    return current_principal


def require_roles(verifier: TokenVerifier, *roles: Role) -> Any:
    current = principal_dependency(verifier)

    async def check(principal: Annotated[Principal, Depends(current)]) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "Forbidden", f"role {principal.role.value} may not do this", kind="forbidden")
        return principal

    return check


OrganisationLookup = Callable[[str], Awaitable[bool]]


def require_known_roles(verifier: TokenVerifier, is_known: OrganisationLookup, *roles: Role) -> Any:
    """Like ``require_roles``, and the caller's organisation must be in the directory as this service
    knows it: a token for an organisation nobody registered is refused (403), whatever it claims; an id
    no directory could hold is refused without asking ``is_known``."""
    check = require_roles(verifier, *roles)

    async def known(principal: Annotated[Principal, Depends(check)]) -> Principal:
        org = principal.organisation_id
        if not _DIRECTORY_ID.fullmatch(org) or not await is_known(org):
            raise Problem(
                403,
                "Unknown organisation",
                "the token's organisation is not in the directory: ask a platform administrator to register it",
                kind="unknown-organisation",
            )
        return principal

    return known


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="send-token", description="Mint a development bearer token.")
    parser.add_argument("--org", required=True, help="organisation id")
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    secret = os.environ.get("JWT_SECRET", DEV_SECRET)
    print(mint_token(args.org, args.role, secret=secret, ttl_seconds=args.ttl))


if __name__ == "__main__":
    main()
