"""The API's routers, one per feature."""

from __future__ import annotations

from fastapi import APIRouter

from waitlists.entrypoints import capacity, clocks, dashboard, exports, figures, trend, waits

ROUTERS: tuple[APIRouter, ...] = (figures.router, clocks.router, exports.router, dashboard.router, trend.router,
                                  waits.router, capacity.router)  # fmt: skip
