from __future__ import annotations

import pytest

from referrals.domain.child import child_reference, is_valid_nhs_number, is_valid_upn


@pytest.mark.parametrize("number", ["9434765919", "943 476 5919", "4010232137"])
def test_valid_nhs_numbers(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("number", ["9434765918", "123456789", "94347659190", "abcdefghij", "", "1000000010"])
def test_invalid_nhs_numbers(number: str) -> None:
    assert not is_valid_nhs_number(number)


def test_upn_format() -> None:
    assert is_valid_upn("A123456789012")
    assert not is_valid_upn("I123456789012")  # I, O and S are not used as check letters
    assert not is_valid_upn("A12345678901")


def test_child_reference_is_keyed_stable_and_ignores_spacing() -> None:
    a = child_reference("943 476 5919", b"k1")
    assert a == child_reference("9434765919", b"k1")
    assert a != child_reference("9434765919", b"k2")
    assert len(a) == 32 and "9434765919" not in a
