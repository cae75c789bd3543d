"""The API's routers, one per feature."""

from __future__ import annotations

from fastapi import APIRouter

from waitlists.entrypoints import clocks, dashboard, exports, figures, trend

ROUTERS: tuple[APIRouter, ...] = (figures.router, clocks.router, exports.router, dashboard.router, trend.router)
