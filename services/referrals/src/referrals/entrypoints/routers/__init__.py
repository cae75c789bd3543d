"""One router per feature of the referrals API."""

from fastapi import APIRouter

from referrals.entrypoints.routers import audit, directory, importing, moves, pages, reading, submission

ROUTERS: tuple[APIRouter, ...] = (
    submission.router,
    reading.router,
    moves.router,
    importing.router,
    directory.router,
    audit.router,
    pages.router,
)
