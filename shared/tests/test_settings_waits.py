"""The relay's safety poll must be shorter than the stuck threshold, or readiness turns red while all is well."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from send_shared.settings import ServiceSettings

BASE = {"service_name": "test", "http_port": 8000, "database_url": "sqlite+aiosqlite:///x.db"}


def test_the_relay_safety_poll_must_be_shorter_than_the_stuck_threshold() -> None:
    assert ServiceSettings(**BASE, outbox_safety_poll_seconds=29, stuck_after_seconds=30)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="OUTBOX_SAFETY_POLL_SECONDS"):
        ServiceSettings(**BASE, outbox_safety_poll_seconds=30, stuck_after_seconds=30)  # type: ignore[arg-type]
