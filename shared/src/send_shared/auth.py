"""Bearer-token identity shared by every service's API.

A token is a JWT whose claims carry the caller's organisation and role:
``{"sub": "...", "org": "<organisation id>", "role": "referrer|receiver|ops|admin|platform_admin", "exp": ...}``.
``admin`` administers its own organisation (its services, its audit log); ``platform_admin`` keeps the
directory of organisations and services for everyone and sees no referral.
Development signs with HS256 and a configured secret (``send-token`` mints one);
production verifies RS256/ES256 tokens against keys from a JWKS URL.
"""

import argparse
import os
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from send_shared.settings import DEV_JWT_SECRET, ServiceSettings
from send_shared.web.problems import Problem

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
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
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
            return Principal(subject=str(claims["sub"]), organisation_id=str(claims["org"]), role=Role(claims["role"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise _unauthorised(str(exc)) from exc


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


def principal_dependency(verifier: TokenVerifier) -> Any:
    """A FastAPI dependency returning the caller, or a 401 problem."""

    async def current_principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorised("a bearer token is required")
        return verifier.verify(token.strip())

    return current_principal


def require_roles(verifier: TokenVerifier, *roles: Role) -> Any:
    current = principal_dependency(verifier)

    async def check(principal: Annotated[Principal, Depends(current)]) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "Forbidden", f"role {principal.role.value} may not do this", kind="forbidden")
        return principal

    return check


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
