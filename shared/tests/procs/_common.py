"""Start-up shared by the helper processes: import path, stop on SIGTERM, a line-per-event log file."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # shared_testkit


def stop_on_sigterm() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


class LineLog(logging.Handler):
    """Writes each record's message as one line, flushed at once (the process may be SIGKILLed any time)."""

    def __init__(self, path: str) -> None:
        super().__init__(logging.INFO)
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def emit(self, record: logging.LogRecord) -> None:
        self.file.write(record.getMessage() + "\n")


def log_to(path: str | None, logger: str) -> None:
    if path:
        target = logging.getLogger(logger)
        target.setLevel(logging.INFO)
        target.addHandler(LineLog(path))
