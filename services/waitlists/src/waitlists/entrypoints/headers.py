"""``Content-Disposition`` built safely, and the dashboard's content security policy (the security
headers themselves are the shared ``send_shared.web.headers``)."""

from __future__ import annotations

import re
from urllib.parse import quote

DASHBOARD_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_UNSAFE_FALLBACK = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` fallback (anything but letters, digits, dot, hyphen and
    underscore becomes ``_``) and the exact name as ``filename*=UTF-8''…`` (RFC 6266, RFC 5987): no
    quote, semicolon, control or non-Latin-1 character from input ever reaches the header raw."""
    fallback = _UNSAFE_FALLBACK.sub("_", filename)[:150] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
