"""Pages people open from an email: one referral, readable, for a signed-in referrer or receiver.

The same use cases as the JSON API (so the same rules: who may read, personal details only for the two
organisations, every read audited); the page adds plain-English words and the names from the directory.
Without a session the page sends the person to sign in and back."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from referrals.domain.history import HistoryRecord
from referrals.domain.lifecycle import Status
from referrals.domain.listing import ListFilter
from referrals.domain.model import Referral
from referrals.entrypoints.dependencies import Lookup, Uow, UowFactory, caller_of
from referrals.entrypoints.routers.reading import ReferralId
from referrals.entrypoints.schemas import ErasedChildOut, ReferralOut
from referrals.service_layer import reading as reading_cases
from referrals.service_layer.directory import all_organisations, all_services
from referrals.service_layer.errors import NotFound, NotYourReferral
from send_shared.auth import (
    Principal,
    Role,
    TokenVerifier,
    ensure_known,
    ensure_role,
    session_principal,
    token_verifier,
)
from send_shared.web.signin import PAGE_HEADERS

router = APIRouter(include_in_schema=False)
LONDON = ZoneInfo("Europe/London")
READERS = (Role.REFERRER, Role.RECEIVER)
STATUS_WORDS = {
    Status.SUBMITTED: "Sent: waiting for the service to look at it",
    Status.ACKNOWLEDGED: "Seen by the service: a decision is on its way",
    Status.ACCEPTED: "Accepted: waiting for support to start",
    Status.REJECTED: "Not accepted by this service",
    Status.SCHEDULED: "An appointment is booked",
    Status.IN_PROGRESS: "Support has started",
    Status.ON_HOLD: "On hold",
    Status.HANDED_OFF: "Passed to another service",
    Status.COMPLETED: "Finished",
    Status.WITHDRAWN: "Withdrawn",
    Status.ENTERED_IN_ERROR: "Recorded in error",
}


async def signed_in_reader(
    request: Request, verifier: Annotated[TokenVerifier, Depends(token_verifier)], is_known: Lookup
) -> Principal | None:
    principal = await session_principal(request, verifier)
    if principal is not None:
        await ensure_known(ensure_role(principal, READERS), is_known)
    return principal


Reader = Annotated[Principal | None, Depends(signed_in_reader)]


@router.get("/referrals/", response_class=HTMLResponse)
async def referrals_page(request: Request, reader: Reader, uow: Uow, more: UowFactory) -> Response:
    """The newest referrals the organisation sent or receives, each linked to its page."""
    if reader is None:
        return RedirectResponse(f"/signin?{urlencode({'next': request.url.path})}", status_code=303)
    found, _ = await reading_cases.list_referrals(
        ListFilter(organisation_id=reader.organisation_id, role=reader.role.value), uow, limit=50, cursor=None
    )
    services = {s.id: s.name for s in await all_services(more())}
    e = html.escape
    rows = "".join(
        f"<tr><td><a href='/referrals/{e(r.id)}'>{_when(r.referred_at)}</a></td>"
        f"<td>{e(services.get(r.service_id, r.service_id))}</td><td>{e(STATUS_WORDS.get(r.status, r.status))}</td></tr>"
        for r in found
    )
    table = (f"<table><thead><tr><th scope='col'>Referred on</th><th scope='col'>Service</th><th scope='col'>Where it is"
             f"</th></tr></thead><tbody>{rows}</tbody></table>") if found else "<p>No referrals yet.</p>"  # fmt: skip
    return _page("Your organisation's newest referrals", table)


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def referral_page(
    referral_id: ReferralId, request: Request, reader: Reader, uow: Uow, more: UowFactory
) -> Response:
    if reader is None:
        return RedirectResponse(f"/signin?{urlencode({'next': request.url.path})}", status_code=303)
    caller = caller_of(reader)
    try:
        referral, person, parallel, consent = await reading_cases.get_referral(referral_id, caller, uow)
        history = await reading_cases.referral_history(referral_id, caller, more())
    except (NotFound, NotYourReferral):
        return _page("Referral not found", "<p>There is no referral here that your organisation may read.</p>", 404)
    shown = ReferralOut.of(
        referral, person, parallel, viewer=(reader.organisation_id, reader.role.value), consent=consent
    )
    names = {o.id: o.name for o in await all_organisations(more())}
    services = {s.id: s.name for s in await all_services(more())}
    return _page(f"Referral to {services.get(referral.service_id, referral.service_id)}",
                 _body(referral, shown, history, names, services))  # fmt: skip


def _when(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(LONDON).strftime("%-d %B %Y")


def _body(
    referral: Referral,
    shown: ReferralOut,
    history: list[HistoryRecord],
    names: dict[str, str],
    services: dict[str, str],
) -> str:
    e = html.escape
    child = ""
    if isinstance(shown.child, ErasedChildOut):  # the tombstone: who the child was is gone (UK GDPR Art. 17)
        by = names.get(shown.child.erased_by_org_id, shown.child.erased_by_org_id)
        erased = _when(shown.child.erased_at)
        child = f"<tr><th scope='row'>Child</th><td>Details erased on {erased} by {e(by)}</td></tr>"
    elif shown.child is not None:
        born = shown.child.date_of_birth.strftime("%-d %B %Y")
        child = f"<tr><th scope='row'>Child</th><td>{e(shown.child.given_name)} {e(shown.child.family_name)}, born {born}</td></tr>"
    rows = "".join(
        f"<tr><td>{_when(h.occurred_at)}</td><td>{e(STATUS_WORDS.get(h.status, h.status))}</td>"
        f"<td>{e(names.get(h.actor_org_id or '', h.actor_org_id or ''))}</td></tr>"
        for h in history
    )
    return f"""
<p class="status"><strong>{e(STATUS_WORDS.get(referral.status, referral.status))}</strong>
 (since {_when(referral.status_at or referral.referred_at)})</p>
<table class="facts">
{child}
<tr><th scope="row">Service</th><td>{e(services.get(referral.service_id, referral.service_id))}</td></tr>
<tr><th scope="row">Referred by</th><td>{e(names.get(referral.referrer_org_id, referral.referrer_org_id))}</td></tr>
<tr><th scope="row">Referred on</th><td>{_when(referral.referred_at)}</td></tr>
<tr><th scope="row">Urgency</th><td>{e(str(referral.urgency).replace("_", " "))}</td></tr>
<tr><th scope="row">Main need</th><td>{e(str(referral.primary_need))}</td></tr>
</table>
<h2>What has happened</h2>
<table class="history"><thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">By</th></tr></thead>
<tbody>{rows}</tbody></table>
<p><a href="/v1/referrals/{e(referral.id)}">The same referral as data (JSON)</a></p>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    e = html.escape
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#0b0c0c}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #b1b4b6;vertical-align:top}}
.status{{font-size:1.3rem}}a{{color:#1d70b8}}header{{display:flex;justify-content:space-between;align-items:baseline}}</style>
</head><body><header><span>SEND referrals</span>
<form method="post" action="/signout"><button type="submit">Sign out</button></form></header>
<main><h1>{e(title)}</h1>{body}</main></body></html>""",
        status_code=status,
        headers=PAGE_HEADERS,
    )
