"""What each part of a service says about itself, for ``/readyz``: ``None`` when it is fine, or the
reason it is not (stuck, healing, failing). Parts register a function read at each readiness call;
it must answer from memory, without I/O."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter

log = logging.getLogger(__name__)
Status = Callable[[], str | None]

DETECTIONS = Counter(
    "broker_state_loss_detections",
    "Times the service noticed the broker had lost or replaced state, by what was noticed.",
    ["kind"],
)


class Health:
    def __init__(self) -> None:
        self._parts: dict[str, Status] = {}

    def register(self, name: str, status: Status) -> None:
        self._parts[name] = status

    def report(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for name, status in self._parts.items():
            try:
                found[name] = status()
            except Exception as exc:  # noqa: BLE001 - a status that fails to answer is itself a problem
                found[name] = f"status unavailable: {exc}"
        return found


def detected(kind: str, message: str, **fields: object) -> None:
    """Log and count one detection of lost broker state."""
    DETECTIONS.labels(kind).inc()
    log.warning(message, extra={"detection": kind, **fields})
