"""Development SMTP sink: accepts every message and writes it to a folder as ``<timestamp>-<n>.eml``.

Nothing is relayed anywhere. Each file holds the message bytes as received (RFC 5322).

    python -m send_devkit.smtp_sink --dir var/mail --port 1025      # run until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from send_devkit.ports import free_port


class _FolderHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{next(self._numbers)}.eml"
        await asyncio.to_thread(self._write, name, content)
        return "250 Message accepted for delivery"

    def _write(self, name: str, content: bytes) -> None:
        # Written under a hidden name then renamed, so a reader never sees half a message.
        partial = self.directory / f".{name}.part"
        partial.write_bytes(content)
        os.replace(partial, self.directory / name)


class SmtpSink:
    """An SMTP server on ``host:port`` (a free port when 0) in a background thread."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        if self._controller is not None:
            raise RuntimeError("SMTP sink already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(_FolderHandler(self.directory), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def messages(self) -> list[Path]:
        """The messages received so far, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"), help="folder for the .eml files")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1025, help="listen port; 0 for a free one (default: 1025)")
    args = parser.parse_args(argv)
    stopping = threading.Event()

    def _stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with SmtpSink(args.dir, host=args.host, port=args.port) as sink:
        print(f"SMTP sink listening on {sink.host}:{sink.port}, writing to {sink.directory}", flush=True)
        while not stopping.wait(0.5):
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
