"""Development bearer tokens: ``send-token`` mints one for a seeded organisation and lists them.

    send-token --org org-riverside-primary --role referrer     # prints a token valid 8 hours
    send-token --list                                          # the seeded organisations and their kinds

Tokens are HS256-signed with ``JWT_SECRET`` (the development secret unless set); production verifies
tokens from its identity provider and refuses the development secret.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from importlib.resources import files

from send_shared.auth import DEV_SECRET, Role, signed_token

DEFAULT_TTL_SECONDS = 8 * 3600
ROLE_FOR_KIND = {"school": "referrer", "trust": "admin", "local_authority": "receiver", "camhs": "receiver",
                 "health": "receiver", "voluntary": "receiver"}  # fmt: skip


def mint_token(
    organisation_id: str,
    role: Role | str,
    *,
    secret: str = DEV_SECRET,
    audience: str = "send-referrals",
    subject: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    return signed_token(secret, organisation_id, role, audience=audience, subject=subject, ttl_seconds=ttl_seconds)


def seeded_organisations() -> list[dict[str, str]]:
    """The organisations of the referrals service's seed directory (package data, not its code)."""
    seed = json.loads(files("referrals").joinpath("seed/directory.json").read_text(encoding="utf-8"))
    return list(seed["organisations"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="send-token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="list the seeded organisations and stop")
    parser.add_argument("--org", help="organisation id (see --list)")
    parser.add_argument("--role", choices=[r.value for r in Role])
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds (default: 8 hours)")
    args = parser.parse_args(argv)
    if args.list:
        for org in seeded_organisations():
            suggested = ROLE_FOR_KIND.get(org["kind"], "receiver")
            print(f"{org['id']:<32} {org['kind']:<16} {org['name']}  (e.g. --role {suggested})")
        print("roles: referrer, receiver, ops, admin; platform_admin keeps the directory", file=sys.stderr)
        return
    if not args.org or not args.role:
        parser.error("--org and --role are required (send-token --list shows the organisations)")
    secret = os.environ.get("JWT_SECRET", DEV_SECRET)
    print(mint_token(args.org, args.role, secret=secret, ttl_seconds=args.ttl))
    until = datetime.fromtimestamp(time.time() + args.ttl, UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{args.role} at {args.org}, valid for {args.ttl // 3600} h {args.ttl % 3600 // 60} min, until {until}",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
