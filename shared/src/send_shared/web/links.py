"""Absolute links to a named route, as ``request.url_for`` gives them, without searching the route table each time.

``url_for`` asks every route in turn whether it has the name, which was a fiftieth of a submission's work. The
route's path is looked up once per app, name and parameter names, with each parameter as ``{name}``, kept on the
app's state, and filled in afterwards. That is what Starlette does with the ``str`` parameters our routes take: they
are put in as they are, and one holding ``/`` is refused.
"""

from __future__ import annotations

from starlette.requests import Request


def url_for(request: Request, name: str, **path_params: str) -> str:
    state = request.app.state
    paths: dict[tuple[str, tuple[str, ...]], str] | None = getattr(state, "link_paths", None)
    if paths is None:
        paths = state.link_paths = {}
    key = (name, tuple(sorted(path_params)))
    if (path := paths.get(key)) is None:
        path = paths[key] = str(request.app.url_path_for(name, **{param: f"{{{param}}}" for param in path_params}))
    for param, value in path_params.items():
        if "/" in value:
            raise ValueError(f"the path parameter {param} cannot hold '/'")
    return str(request.base_url).rstrip("/") + path.format_map(path_params)
