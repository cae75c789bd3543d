"""Child identifiers and the pseudonymous child reference."""

from __future__ import annotations

import hashlib
import hmac
import re

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_UPN = re.compile(r"^[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z]$")


def is_valid_nhs_number(value: str) -> bool:
    """NHS number: 10 digits whose last is the modulus 11 check digit of the first nine."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    remainder = sum(int(d) * w for d, w in zip(digits[:9], _NHS_WEIGHTS, strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def is_valid_upn(value: str) -> bool:
    """Unique pupil number: 13 characters, a check letter, 11 digits, then a digit or letter (DfE format)."""
    return bool(_UPN.match(value.strip().upper()))


def child_reference(identifier: str, key: bytes) -> str:
    """Keyed hash of the normalised NHS number or UPN: stable per child, meaningless without the key."""
    normalised = identifier.replace(" ", "").upper()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:32]
