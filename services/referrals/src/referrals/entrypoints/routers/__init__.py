"""One router per feature of the referrals API."""

from fastapi import APIRouter

from referrals.entrypoints.routers import (
    audit,
    consent,
    directory,
    family,
    importing,
    moves,
    pages,
    privacy,
    reading,
    signposts,
    submission,
)

ROUTERS: tuple[APIRouter, ...] = (
    submission.router,
    reading.router,
    moves.router,
    signposts.router,
    consent.router,
    importing.router,
    directory.router,
    audit.router,
    privacy.router,
    pages.router,
    family.router,
    family.pages,
)
