"""Absolute links to a named route, as ``request.url_for`` gives them, without searching the route table each time.

``url_for`` asks every route in turn whether it has the name, which was a fiftieth of a submission's work. The
route's path is looked up once per router, name and parameter names, with each parameter as ``{name}``, kept on the
router, and filled in afterwards. That is what Starlette does with the ``str`` parameters our routes take: the value
is put in as it is, and an empty one or one holding ``/`` is refused. A route whose parameters have another
convertor (``{n:int}``) is left to Starlette.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

_KEPT = "_send_link_paths"  # on the router: the path of each (name, parameter names), or None for Starlette's


def url_for(request: Request, name: str, **path_params: Any) -> str:
    router = request.scope.get("router") or request.scope["app"]  # the one Starlette's url_for asks
    paths: dict[tuple[str, tuple[str, ...]], str | None] = router.__dict__.setdefault(_KEPT, {})
    key = (name, tuple(sorted(path_params)))
    if key not in paths:
        paths[key] = _path(router, name, key[1])
    path = paths[key]
    if path is None:
        return str(request.url_for(name, **path_params))
    values = {param: str(value) for param, value in path_params.items()}
    for param, value in values.items():
        if not value or "/" in value:
            raise ValueError(f"the path parameter {param} must be a non-empty value without '/'")
    return str(request.base_url).rstrip("/") + path.format_map(values)


def _path(router: Any, name: str, params: tuple[str, ...]) -> str | None:
    """The route's path with ``{param}`` for each parameter; None where a placeholder is not what Starlette would put
    there (a convertor other than ``str``)."""
    try:
        path = str(router.url_path_for(name, **{param: f"{{{param}}}" for param in params}))
    except (ValueError, AssertionError):
        return None
    placeholders = [f"{{{param}}}" for param in params]
    return path if all(path.count(p) == 1 for p in placeholders) else None
