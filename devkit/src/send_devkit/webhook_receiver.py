"""A real local HTTP receiver for webhook tests and benchmarks: scripted answers per path, signatures checked with the
`standardwebhooks` library (not our code)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from send_devkit.ports import free_port


@dataclass
class Received:
    path: str
    webhook_id: str
    body: dict[str, Any]
    verified: bool
    answered: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    """Answers for each path are taken in order: an int status, ("sleep", seconds), or ("status", code, headers)."""

    secrets: dict[str, str] = field(default_factory=dict)
    script: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        raw = (await request.body()).decode()
        headers = dict(request.headers.items())
        secret = self.secrets.get(path)
        verified = False
        body: dict[str, Any] = {}
        if secret:
            try:
                body = Webhook(secret).verify(raw, headers)
                verified = True
            except (WebhookVerificationError, ValueError):  # unsigned, badly signed or not JSON
                verified = False
        answer = self.script[path].pop(0) if self.script[path] else 200
        status, extra = 200, {}
        if isinstance(answer, int):
            status = answer
        elif answer[0] == "sleep":  # ("sleep", seconds[, status once awake])
            await asyncio.sleep(answer[1])
            status = answer[2] if len(answer) > 2 else 200
        elif answer[0] == "status":
            status, extra = answer[1], answer[2]
        self.received.append(Received(path, headers.get("webhook-id", ""), body, verified, status))
        return Response("ok" if status < 300 else "no", status_code=status, headers=extra)

    def start(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def successes(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path and 200 <= r.answered < 300]
