"""Links to named routes agree with Starlette's own ``request.url_for``, which searches the route table."""

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from send_shared.web.links import url_for


def app_with_nested_routers() -> FastAPI:
    """An app with routers included under a prefix, a route with an int convertor, and a sub-app mounted at
    ``/api``, each with an endpoint answering our link and Starlette's for a name and the query's parameters."""

    async def links(name: str, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        if "n" in params:
            params["n"] = int(params["n"])
        try:
            ours = url_for(request, name, **params)
        except ValueError:
            ours = "refused"
        try:
            theirs = str(request.url_for(name, **params))
        except AssertionError:  # Starlette asserts a str parameter is not empty and holds no "/"
            theirs = "refused"
        return {"ours": ours, "theirs": theirs}

    def routes(app: FastAPI) -> None:
        inner = APIRouter(prefix="/v1")

        @inner.get("/referrals/{referral_id}", name="get_referral")
        async def get_referral(referral_id: str) -> None: ...

        @inner.get("/referrals/{referral_id}/consent/{version}", name="get_consent")
        async def get_consent(referral_id: str, version: str) -> None: ...

        @inner.get("/pages/{n:int}", name="page")
        async def page(n: int) -> None: ...

        app.include_router(inner)
        app.add_api_route("/links/{name}", links)

    app, sub = FastAPI(), FastAPI()
    routes(app)
    routes(sub)

    @sub.get("/items/{item_id}", name="sub_item")
    async def sub_item(item_id: str) -> None: ...

    app.mount("/api", sub, name="api")
    return app


@pytest.mark.parametrize("root_path", ["", "/root"])
@pytest.mark.parametrize("mounted", ["", "/api"])
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("get_referral", {"referral_id": "4f1c2a9e-0000-4000-8000-000000000001"}),
        ("get_consent", {"referral_id": "r-1", "version": "3"}),
        ("get_consent", {"version": "3", "referral_id": "r 1?x=é{version}"}),
        ("get_referral", {"referral_id": "a/b"}),
        ("get_referral", {"referral_id": ""}),
        ("page", {"n": "7"}),
        ("api:sub_item", {"item_id": "x"}),
    ],
)
async def test_a_link_is_the_one_starlette_gives(
    root_path: str, mounted: str, name: str, params: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=app_with_nested_routers(), root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="https://example.test:8443") as c:
        for _ in range(2):  # the second time from the path kept on the router
            answer = (await c.get(f"{root_path}{mounted}/links/{name}", params=params)).json()
            assert answer["ours"] == answer["theirs"]
