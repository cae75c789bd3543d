"""Request headers that make writes safe: If-Match (optimistic concurrency) and Idempotency-Key."""

from __future__ import annotations

import re
from typing import Any

from referrals.entrypoints.problems import invalid
from send_shared.web.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')
_VERSION = re.compile(r"[1-9][0-9]{0,8}")


def parse_if_match(value: str | None) -> int:
    """The version If-Match names. RFC 9110 (13.1.1) compares If-Match strongly: a weak tag (``W/"3"``) never
    matches, so it is a 412; a list of tags, ``*`` or anything that is not an entity tag is a 400."""
    if not value or not value.strip():
        raise Problem(428, "Precondition required", "send If-Match with the referral's ETag", kind="if-match-required")
    bad = Problem(400, "Bad If-Match", 'If-Match must be the one ETag of the referral, e.g. "3"', kind="bad-if-match")
    tag = _ENTITY_TAG.fullmatch(value.strip())
    if tag is None:
        raise bad
    weak, opaque = tag.groups()
    if weak:
        raise Problem(
            412,
            "Precondition failed",
            "If-Match uses strong comparison: a weak ETag never matches; send the referral's ETag as given",
            kind="weak-etag",
        )
    if not _VERSION.fullmatch(opaque):
        # A strong tag this API never issued cannot match the current one.
        raise Problem(412, "Precondition failed", "If-Match is not an ETag of this referral", kind="stale-version")
    return int(opaque)


_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
IDEMPOTENCY_KEY = "Idempotency-Key"


def idempotency_key_parameter(what: str) -> dict[str, Any]:
    """The header as the OpenAPI document shows it: required. The route reads it itself (it is not a FastAPI
    parameter) so that a missing key gets the same problem as a bad one, from :func:`check_idempotency_key`."""
    return {
        "name": IDEMPOTENCY_KEY,
        "in": "header",
        "required": True,
        "description": f"A key you choose for this {what}, e.g. a UUID: 1 to 255 visible ASCII characters. A retry "
        f"with the same key and the same {what} returns the first response and changes nothing; the same key "
        f"with a different {what} is a 422.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    }


def check_idempotency_key(value: str | None) -> str:
    if not value or len(value) > 255:
        raise invalid(IDEMPOTENCY_KEY, "required", "send an Idempotency-Key header of 1 to 255 characters")
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise invalid(IDEMPOTENCY_KEY, "visible_ascii", "an Idempotency-Key is visible ASCII characters only")
    return value
