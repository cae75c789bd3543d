"""Log lines are JSON objects with an ISO 8601 time and its offset, no terminal colour codes, and one
access line per request people make."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import httpx
from fastapi import FastAPI

from send_shared.web.access_log import AccessLog


def records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_an_iso_time_with_its_offset_and_no_colour(lines: io.StringIO) -> None:
    logging.getLogger("send.test").info(  # as uvicorn logs: a coloured copy in color_message
        "Started \x1b[1mserver\x1b[0m", extra={"color_message": "\x1b[32mStarted server\x1b[0m"}
    )
    (record,) = records(lines)
    assert record["message"] == "Started server"
    assert "color_message" not in record and "\x1b" not in json.dumps(record)
    at = datetime.fromisoformat(str(record["time"]))
    assert at.utcoffset() is not None and str(record["time"]).endswith("+00:00")


async def test_each_request_but_probes_gets_one_access_line(lines: io.StringIO) -> None:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AccessLog)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/v1/things/42?search=secret")
        await client.get("/healthz")
        await client.get("/nowhere")
    access = [r for r in records(lines) if r["logger"] == "send.access"]
    assert [(r["http_method"], r["http_path"], r["http_status"]) for r in access] == [
        ("GET", "/v1/things/42", 200),
        ("GET", "/nowhere", 404),
    ]
    assert access[0]["http_route"] == "/v1/things/{thing_id}"
    assert "secret" not in lines.getvalue()
    assert all(isinstance(r["duration_ms"], float) for r in access)
