"""The dispatcher's longest wait must be shorter than the stuck threshold, or readiness turns red while all is
well (its stuck check is refreshed at each look)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from notifications.settings import NotificationsSettings


def test_the_dispatcher_poll_must_be_shorter_than_the_stuck_threshold() -> None:
    assert NotificationsSettings(webhook_poll_ms=29_000, stuck_after_seconds=30)
    with pytest.raises(ValidationError, match="WEBHOOK_POLL_MS"):
        NotificationsSettings(webhook_poll_ms=45_000, stuck_after_seconds=30)
