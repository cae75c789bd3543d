"""What school MIS exports (SIMS, Arbor, Bromcom and spreadsheets saved from them) write, read as the import's
canonical forms before validation, so a school need not reformat its export:

- headers in any case, with spaces or hyphens, and the usual MIS names: ``Forename``/``Legal Forename``/``First
  Name`` for given_name, ``Surname``/``Legal Surname``/``Last Name`` for family_name, ``DOB``/``Date of Birth``,
  ``NHS No``/``NHS Number``, ``UPN``;
- dates day first, as in the UK: ``12/03/2016``, ``12-03-2016``, ``12.03.2016`` (four-digit years only: a
  two-digit year is refused, not guessed), or ISO ``2016-03-12``;
- date-times the same, alone (midnight) or with a time (``12/03/2016 14:30``), or ISO without an offset: all in
  UK local time (Europe/London, GMT or BST as on that day); ISO with an offset as before;
- codes in any case, with spaces for underscores: ``Parent``, ``Very urgent``, ``On hold``, ``semh``.

Anything else is passed on unchanged, so the import's own rules report it with its line and column.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from referrals.domain.codes import NeedCode

LONDON = ZoneInfo("Europe/London")
HEADER_ALIASES = {
    "forename": "given_name", "legal_forename": "given_name", "first_name": "given_name", "firstname": "given_name",
    "preferred_forename": "given_name",
    "surname": "family_name", "legal_surname": "family_name", "last_name": "family_name", "lastname": "family_name",
    "dob": "date_of_birth", "birth_date": "date_of_birth",
    "nhs_no": "nhs_number", "nhs": "nhs_number", "unique_pupil_number": "upn",
}  # fmt: skip
DATE_COLUMNS = ("date_of_birth", "expected_resume")
INSTANT_COLUMNS = ("consent_given_at", "referred_at", "accepted_at", "status_at", "appointment_at")
CODE_COLUMNS = ("urgency", "consent_given_by", "status", "hold_reason")
NEED_COLUMNS = ("primary_need", "secondary_need")
_NEEDS = {code.value.casefold(): code.value for code in NeedCode}
_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def header(name: str) -> str:
    key = re.sub(r"[\s-]+", "_", name.strip().casefold())
    return HEADER_ALIASES.get(key, key)


def _day_first(text: str) -> date | None:
    found = _DAY_FIRST.fullmatch(text)
    if found is None:
        return None
    day, month, year = (int(part) for part in found.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _date(text: str) -> str:
    found = _day_first(text)
    return found.isoformat() if found else text


def _instant(text: str) -> str:
    day_part, _, time_part = text.replace("T", " ", 1).partition(" ")
    day = _day_first(day_part)
    if day is None:
        try:
            day = date.fromisoformat(day_part)
        except ValueError:
            return text
        if time_part and ("+" in time_part or "-" in time_part or time_part.endswith(("Z", "z"))):
            return text  # ISO with an offset: already canonical
    at = time()
    if time_part:
        clock = _TIME.fullmatch(time_part.strip())
        if clock is None:
            return text
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            return text
        at = time(hour, minute, second)
    return datetime.combine(day, at, tzinfo=LONDON).isoformat()


def _code(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().casefold())


def canonical(column: str, value: str) -> str:
    """The cell in the import's canonical form, where it is a recognised UK export form."""
    if column in DATE_COLUMNS:
        return _date(value)
    if column in INSTANT_COLUMNS:
        return _instant(value)
    if column in CODE_COLUMNS:
        return _code(value)
    if column in NEED_COLUMNS:
        return _NEEDS.get(value.casefold(), value)
    return value
