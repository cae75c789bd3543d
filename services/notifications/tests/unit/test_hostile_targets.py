"""Issue #13, pure rules: IPv6 transition addresses and hostile Retry-After values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifications.domain.delivery import retry_after
from notifications.domain.subscriptions import UnsafeTarget, check_address

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
        "2002:808:808::1",  # 6to4 around a public address: refused all the same (the whole range is)
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64, 169.254.169.254
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",  # IPv4-mapped, public: refused too
        "::127.0.0.1",  # IPv4-compatible
        "::a9fe:a9fe",  # IPv4-compatible, metadata address
        "::ffff:0:a00:1",  # IPv4-translated
        "2a00:1450:4009::5efe:a00:1",  # ISATAP interface identifier around 10.0.0.1
        "2a00:1450:4009:0:200:5efe:7f00:1",  # ISATAP (universal bit) around 127.0.0.1
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_ipv6_transition_addresses_are_refused(address: str, allow_private: bool) -> None:
    with pytest.raises(UnsafeTarget):
        check_address(address, allow_private=allow_private)


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2a00:1450:4009:81f::200e", "2001:4860:4860::8888"])
def test_ordinary_global_ipv6_still_passes(address: str) -> None:
    check_address(address, allow_private=False)


@pytest.mark.parametrize("address", ["not-an-ip", "1.2.3", "", "::ffff:999.1.1.1"])
def test_a_resolver_answer_that_is_not_an_address_is_refused_not_an_error(address: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_address(address, allow_private=True)


@pytest.mark.parametrize(
    "value",
    ["9" * 30, "-" + "9" * 30, "1e400", "Wed, 21 Oct 9999 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 -0000",
     "Wed, 21 Oct 2026 07:28:00", "Mon, 99 Foo 2026 99:99:99 GMT", "x" * 10_000, "\x00", " "],
)  # fmt: skip
def test_any_retry_after_a_receiver_sends_gives_a_bounded_delay_or_none(value: str) -> None:
    delay = retry_after(value, NOW)
    assert delay is None or timedelta(0) <= delay <= timedelta(hours=10)


def test_retry_after_without_zone_is_read_as_utc() -> None:
    assert retry_after("Sun, 01 Mar 2026 12:00:30 -0000", NOW) == timedelta(seconds=30)
    assert retry_after("9" * 30, NOW) == timedelta(hours=10)
