"""Child identifiers and the pseudonymous child reference."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_NHS = re.compile(r"[0-9]{10}")
# ASCII only: `\d` and str.isdigit() also accept full-width and Arabic-Indic digits, which would give one
# child two identifiers and slip past duplicate detection.
_UPN = re.compile(r"[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]")


def is_valid_nhs_number(value: str) -> bool:
    """NHS number: 10 ASCII digits (spaces allowed between them) whose last is the modulus 11 check digit
    of the first nine."""
    digits = value.replace(" ", "")
    if not _NHS.fullmatch(digits):
        return False
    remainder = sum(int(d) * w for d, w in zip(digits[:9], _NHS_WEIGHTS, strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def is_valid_upn(value: str) -> bool:
    """Unique pupil number: 13 ASCII characters, a check letter, 11 digits, then a digit or letter (DfE format)."""
    stripped = value.strip()
    return stripped.isascii() and bool(_UPN.fullmatch(stripped.upper()))


def child_reference(identifier: str, key: bytes) -> str:
    """Keyed hash of the normalised NHS number or UPN: stable per child, meaningless without the key."""
    normalised = identifier.replace(" ", "").upper()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PersonalDetails:
    """Who the child is and why they are referred. Never leaves the referrals service."""

    given_name: str
    family_name: str
    date_of_birth: date
    nhs_number: str | None
    upn: str | None
    reason: str

    @property
    def identifier(self) -> str:
        identifier = self.nhs_number or self.upn
        if identifier is None:
            raise ValueError("an NHS number or UPN is required")
        return identifier
