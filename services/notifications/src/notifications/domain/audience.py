"""Who an event concerns: only these organisations may ever be notified of it. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def organisations_concerned(data: Mapping[str, Any]) -> list[str]:
    """The referrer and the receiving organisation of a referral event (no one else)."""
    found = [data.get("referrer_org_id"), data.get("receiving_org_id")]
    return sorted({str(org) for org in found if org})
