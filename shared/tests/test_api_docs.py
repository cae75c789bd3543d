"""The API docs pages are served with their own assets (no CDN) and a policy that allows only those."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
from fastapi import FastAPI

from send_shared.web.docs import install_api_docs
from send_shared.web.headers import SecurityHeaders


def docs_app() -> FastAPI:
    app = FastAPI(title="Demo", docs_url=None, redoc_url=None)
    install_api_docs(app)
    app.add_middleware(SecurityHeaders)
    return app


async def test_swagger_ui_and_redoc_load_everything_from_the_service() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=docs_app()), base_url="http://t") as client:
        for page in ("/docs", "/redoc"):
            answer = await client.get(page)
            assert answer.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
            assert sources and all(s.startswith("/") for s in sources), f"{page} loads from elsewhere: {sources}"
            for source in sources:
                asset = await client.get(source)
                assert asset.status_code == 200 and len(asset.content) > 100, source
            policy = answer.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy
            for script in re.findall(r"<script>(.*?)</script>", answer.text, re.S):
                digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
                assert f"'sha256-{digest}'" in policy
            assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]


async def test_swagger_ui_keeps_the_token_it_was_given() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=docs_app()), base_url="http://t") as client:
        assert '"persistAuthorization": true' in (await client.get("/docs")).text
