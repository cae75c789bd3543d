"""Who may hear about an event, and which endpoints want it. Pure Python."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

REFERRAL_PREFIX = "uk.send.referral."
ALERT_PREFIX = "uk.send.waitlist."
PING = "uk.send.webhook.ping.v1"


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    organisation_id: str
    url: str
    event_types: tuple[str, ...]
    service_ids: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    status: EndpointStatus = EndpointStatus.ACTIVE


def organisations_concerned(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """Only the referrer and the receiving organisation ever hear about a referral or its alerts."""
    if not event_type.startswith((REFERRAL_PREFIX, ALERT_PREFIX)):
        return []
    found = [data.get("referrer_org_id"), data.get("receiving_org_id")]
    return sorted({str(org) for org in found if org})


def type_matches(pattern: str, event_type: str) -> bool:
    """Exact type, ``*`` for everything, or a prefix wildcard such as ``uk.send.referral.*``."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def wants(endpoint: Endpoint, event_type: str, data: Mapping[str, Any], concerned: Iterable[str]) -> bool:
    """Whether this event goes to this endpoint. The organisation check comes first and cannot be
    widened by any filter: an endpoint hears only about its own organisation's referrals."""
    if endpoint.organisation_id not in set(concerned):
        return False
    if not any(type_matches(p, event_type) for p in endpoint.event_types):
        return False
    if endpoint.service_ids and data.get("service_id") not in endpoint.service_ids:
        return False
    return not (endpoint.urgencies and data.get("urgency") not in endpoint.urgencies)


class UnsafeTarget(ValueError):
    """A webhook URL the service must not call."""


def check_url_shape(url: str, *, require_https: bool) -> str:
    """Scheme, host and credentials rules; returns the host to resolve."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (require_https and parts.scheme != "https"):
        raise UnsafeTarget("the URL must use https" if require_https else "the URL must use http or https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not allowed; authenticate with the signature")
    return parts.hostname


def check_address(address: str, *, allow_private: bool) -> None:
    """Refuses loopback, link-local, private, shared, multicast, reserved and unspecified addresses."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise UnsafeTarget(f"{address} is not a routable address")
    if not allow_private and (ip.is_loopback or ip.is_private or not ip.is_global):
        raise UnsafeTarget(f"{address} is a loopback or private address")
