"""What the waitlists API accepts at its edge, defined once and reused by every route.

- Ids (service, organisation, area, referral) match the directory's own rule: lower-case letters,
  digits and hyphens, starting with a letter or digit, 64 characters at most (a referral id, a UUID,
  36). Anything else (control or non-ASCII characters, NUL, very long strings) is a 422 naming the
  field and the rule, before it reaches a query or a response header.
- Dates are calendar dates written ``YYYY-MM-DD``: no time, so no naive (or aware) datetime slips in
  as a date, and no number of seconds since 1970 either. A reporting date lies from
  ``EARLIEST_REPORT_DATE`` to a year after today (and ``as_of`` is never after today); nothing in the
  date arithmetic behind a figure can then leave the calendar.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from send_shared.events.schemas import DIRECTORY_ID_PATTERN
from send_shared.web.problems import Problem
from waitlists.domain.scope import Scope
from waitlists.domain.timeline import london_today

ID_PATTERN = DIRECTORY_ID_PATTERN
REFERRAL_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,35}$"
EARLIEST_REPORT_DATE = date(2000, 1, 1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_SCOPE_ID = "The directory id of the service, organisation or area that `scope` names."
ScopeIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description=_SCOPE_ID)]
ScopeIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN, description=_SCOPE_ID)]
ReferralIdPath = Annotated[
    str, Path(min_length=1, max_length=36, pattern=REFERRAL_ID_PATTERN, description="The referral's id (a UUID).")
]
ScopeQuery = Annotated[
    Scope, Query(description="What the figures cover: one service, an organisation's services, or an area's.")
]
ScopePath = Annotated[
    Scope, Path(description="What the figures cover: one service, an organisation's services, or an area's.")
]


def latest_report_date() -> date:
    """A year after today (28 February for a 29 February)."""
    now = london_today()
    try:
        return now.replace(year=now.year + 1)
    except ValueError:
        return now.replace(year=now.year + 1, day=28)


def _calendar_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("date_format", "a calendar date written YYYY-MM-DD is expected (no time, no zone)")


def _in_range(value: date) -> date:
    latest = latest_report_date()
    if not EARLIEST_REPORT_DATE <= value <= latest:
        raise PydanticCustomError(
            "date_range",
            "the date must be from {earliest} to {latest}",
            {"earliest": EARLIEST_REPORT_DATE.isoformat(), "latest": latest.isoformat()},
        )
    return value


ReportDate = Annotated[date, BeforeValidator(_calendar_date), AfterValidator(_in_range)]
AsOf = Annotated[
    ReportDate | None,
    Query(description="The reporting date, YYYY-MM-DD (Europe/London), not in the future; default today."),
]


def validation_problem(field: str, rule: str, message: str) -> Problem:
    return Problem(422, "Validation failed", message, kind="validation",
                   errors=[{"field": field, "rule": rule, "message": message}])  # fmt: skip


def as_of_or_today(value: date | None) -> date:
    day = value or london_today()
    if day > london_today():
        raise validation_problem("as_of", "not_in_future", "as_of must not be in the future")
    return day


def not_found(scope: Scope, scope_id: str) -> Problem:
    return Problem(404, "Not found", f"no {scope.value} {scope_id!r} is known", kind="not-found")
