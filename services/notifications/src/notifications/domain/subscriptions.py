"""Who may hear about an event, and which endpoints want it. Pure Python."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from notifications.domain.consent import ConsentState
from send_shared.events.schemas import (
    CLOCKS_UPDATED,
    CONSENT_EVENT_TYPES,
    SCHEMAS,
    WAIT_ESTIMATE,
    ReferralStatus,
    referral_event_type,
)

REFERRAL_PREFIX = "uk.send.referral."
ALERT_PREFIX = "uk.send.waitlist."
MAX_URL_LENGTH = 2000  # endpoints.url is String(2000)
# The event types an endpoint can receive: the contract's types that concern organisations (the ping is
# sent to every endpoint on request, whatever it subscribes to).
# (Not the clocks waitlists tells the referrals service for the family view, nor its services' wait estimates:
# those are no one's webhook.)
NOT_WEBHOOKS = frozenset({CLOCKS_UPDATED, WAIT_ESTIMATE})
SUBSCRIBABLE_TYPES = frozenset(
    t for t in SCHEMAS if t.startswith((REFERRAL_PREFIX, ALERT_PREFIX)) and t not in NOT_WEBHOOKS
)


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class Urgency(StrEnum):
    """A referral's urgency, as its events carry it: what an endpoint's ``urgencies`` filter lists."""

    ROUTINE = "routine"
    URGENT = "urgent"
    VERY_URGENT = "very_urgent"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    organisation_id: str
    url: str
    event_types: tuple[str, ...]
    service_ids: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    status: EndpointStatus = EndpointStatus.ACTIVE


# The reason code of the referral's withdrawal that a withdrawal of consent before acceptance causes.
CONSENT_WITHDRAWN_REASON = "consent_withdrawn"
_WITHDRAWN = referral_event_type(ReferralStatus.WITHDRAWN)


def organisations_concerned(event_type: str, data: Mapping[str, Any], consent: ConsentState | None = None) -> list[str]:
    """Who hears about a referral event, a consent event or a clock alert (webhooks and email alike): only the
    referrer and the receiving organisation ever do, and while the family's consent is withdrawn (``consent``,
    the consent in force for the event's referral) only the receiving organisation, which must still act
    (close the referral or record the statutory basis it goes on under). Two things still reach both: the
    consent events themselves (the receiver stops the work, the referrer stops sharing) and the referral's
    withdrawal that a withdrawal of consent before acceptance causes (the referrer must know it ended).
    Once consent is given again both hear everything from then on."""
    if not event_type.startswith((REFERRAL_PREFIX, ALERT_PREFIX)):
        return []
    referrer, receiver = data.get("referrer_org_id"), data.get("receiving_org_id")
    if consent is not None and consent.withdrawn and not _both_hear_despite_withdrawal(event_type, data):
        found = [receiver]
    else:
        found = [referrer, receiver]
    return sorted({str(org) for org in found if org})


def _both_hear_despite_withdrawal(event_type: str, data: Mapping[str, Any]) -> bool:
    if event_type in CONSENT_EVENT_TYPES:
        return True
    return event_type == _WITHDRAWN and data.get("reason_code") == CONSENT_WITHDRAWN_REASON


def type_matches(pattern: str, event_type: str) -> bool:
    """Exact type, ``*`` for everything, or a prefix wildcard such as ``uk.send.referral.*``."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def matches_known_type(pattern: str) -> bool:
    """Whether a subscription pattern matches at least one type an endpoint can receive (a typo never does)."""
    return any(type_matches(pattern, t) for t in SUBSCRIBABLE_TYPES)


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


# IPv6 ranges that carry (or route to) an IPv4 address: refused outright, whatever the embedded address.
# Checking the embedded IPv4 instead would be finer, but no receiver needs these, and a relay or a NAT64
# gateway in front of our network could reach what the embedded address names.
TRANSITION_NETWORKS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated); also holds :: and ::1
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local-use
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4
    )
)
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)  # interface identifier ``0:5efe:a.b.c.d`` / ``200:5efe:a.b.c.d``


def check_address(address: str, *, allow_private: bool) -> None:
    """Refuses loopback, link-local, private, shared, multicast, reserved and unspecified addresses,
    and IPv6 transition addresses that embed an IPv4 address (``TRANSITION_NETWORKS``, ISATAP)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise UnsafeTarget(f"{address[:100]!r} is not an IP address") from exc
    if isinstance(ip, ipaddress.IPv6Address) and (
        any(ip in network for network in TRANSITION_NETWORKS) or (int(ip) >> 32) & 0xFFFFFFFF in _ISATAP_IDS
    ):
        raise UnsafeTarget(f"{address} is an IPv6 transition address embedding an IPv4 address; not allowed")
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise UnsafeTarget(f"{address} is not a routable address")
    if not allow_private and (ip.is_loopback or ip.is_private or not ip.is_global):
        raise UnsafeTarget(f"{address} is a loopback or private address")
