"""The family view (issue 17).

- The API (``/v1/referrals/{id}/family-links``): the referral's referrer or receiver makes a private link for the
  family, lists the links (never a token) and revokes one. The token travels only in the email.
- The page (``/family/{token}``, HTML, no script): the child's referrals in plain words (with how long children
  wait and the support while waiting each was signposted to, which the family can say they took up), a form for
  the family's contact details and a withdrawal of consent after a confirmation page. Forms carry a CSRF token bound to a
  cookie and to the link, and cross-site posts are refused. Pages are rate-limited per client address and per
  link, never cached or indexed, and refuse to be framed; every view is audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from referrals.domain.errors import DomainError
from referrals.domain.family import (
    CONSENT_WORDS,
    CONTACT_PREFERENCE_WORDS,
    DEFAULT_DAYS,
    MAX_DAYS,
    WITHDRAW_WORDS,
    ContactPreference,
    FamilyContact,
    FamilyLink,
    LinkRefused,
    LinkState,
    day_words,
    hold_wording,
    outcome_words,
    rejection_words,
    status_wording,
    token_hash,
)
from referrals.domain.interim import SignpostNotFound
from referrals.domain.model import MissingDetail
from referrals.entrypoints.dependencies import Party, Settings, Uow, UowFactory, caller_of
from referrals.entrypoints.problems import PROBLEM_RESPONSES, missing_detail, not_found, not_readable
from referrals.entrypoints.routers.reading import ReferralId
from referrals.service_layer import family as family_cases
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.unit_of_work import UnitOfWorkFactory
from referrals.settings import ReferralsSettings
from send_shared.web.problems import Problem
from send_shared.web.rate_limits import Limit

router = APIRouter(prefix="/v1", tags=["family view"], responses=PROBLEM_RESPONSES)
pages = APIRouter(include_in_schema=False)

# --- the API -------------------------------------------------------------------------------------------------

EMAIL_PATTERN = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"


class FamilyLinkIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "parent@example.com", "expires_in_days": 30}]}
    )

    email: str | None = Field(
        None,
        max_length=254,
        pattern=EMAIL_PATTERN,
        description="Where to send the link. Omit it to use the family's contact email on the referral; given, it "
        "becomes that contact email.",
    )
    expires_in_days: int = Field(
        DEFAULT_DAYS, ge=1, le=MAX_DAYS, description=f"How long the link works, 1 to {MAX_DAYS} days."
    )


class FamilyLinkOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7d0c8a9e-3b2f-4c1d-8e5a-1f2b3c4d5e6f",
                    "referral_id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
                    "issued_by_org_id": "org-riverside-primary",
                    "created_at": "2026-11-09T11:00:00Z",
                    "expires_at": "2026-12-09T11:00:00Z",
                    "state": "active",
                    "revoked_at": None,
                    "last_used_at": None,
                }
            ]
        }
    )

    id: str = Field(description="The link's id (not its token: the token is only in the email to the family).")
    referral_id: str = Field(description="The referral it was made from; the page shows every referral of the child.")
    issued_by_org_id: str = Field(description="The organisation that made it (directory id).")
    created_at: datetime = Field(description="When it was made.")
    expires_at: datetime = Field(description="When it stops working.")
    state: LinkState = Field(description="active, expired or revoked.")
    revoked_at: datetime | None = Field(description="When it was revoked, if it was.")
    last_used_at: datetime | None = Field(description="When the family last opened it, if they have.")

    @classmethod
    def of(cls, link: FamilyLink, now: datetime) -> FamilyLinkOut:
        return cls(
            id=link.id, referral_id=link.referral_id, issued_by_org_id=link.issued_by_org_id,
            created_at=link.created_at, expires_at=link.expires_at, state=link.state(now),
            revoked_at=link.revoked_at, last_used_at=link.last_used_at,
        )  # fmt: skip


LinkId = Annotated[
    str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f-]{36}$", description="A family link's id (UUID).")
]


@router.post(
    "/referrals/{referral_id}/family-links",
    response_model=FamilyLinkOut,
    status_code=201,
    summary="Send the family a private link to their child's page",
)
async def create_family_link(referral_id: ReferralId, body: FamilyLinkIn, caller: Party, uow: Uow) -> FamilyLinkOut:
    """Makes a link to the family's page (every referral of this child, in plain words) and emails it to the
    family's contact email (or `email`, which then becomes it). The token is 256 random bits; it is in the
    email only, this service keeps its hash. The referrer of the referral or its receiving service may do this.
    A 422 (field `email`, rule `contact_email_required`) when there is nowhere to send it."""
    now = datetime.now(UTC)
    try:
        link = await family_cases.create_link(
            referral_id, caller_of(caller), uow, email=body.email, days=body.expires_in_days, now=now
        )
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except NotFound as exc:
        raise not_found() from exc
    except MissingDetail as exc:
        raise missing_detail(exc) from exc
    return FamilyLinkOut.of(link, now)


@router.get(
    "/referrals/{referral_id}/family-links",
    response_model=list[FamilyLinkOut],
    summary="The family links made from this referral",
)
async def list_family_links(referral_id: ReferralId, caller: Party, uow: Uow) -> list[FamilyLinkOut]:
    """Every link made from the referral, newest first, with its state; never a token."""
    now = datetime.now(UTC)
    try:
        links = await family_cases.list_links(referral_id, caller_of(caller), uow)
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except NotFound as exc:
        raise not_found() from exc
    return [FamilyLinkOut.of(link, now) for link in links]


@router.delete(
    "/referrals/{referral_id}/family-links/{link_id}",
    response_model=FamilyLinkOut,
    summary="Revoke a family link",
)
async def revoke_family_link(referral_id: ReferralId, link_id: LinkId, caller: Party, uow: Uow) -> FamilyLinkOut:
    """The link stops working at once (an email not yet sent is not sent). Revoking a revoked link changes
    nothing."""
    now = datetime.now(UTC)
    try:
        link = await family_cases.revoke_link(referral_id, link_id, caller_of(caller), uow, now=now)
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except NotFound as exc:
        raise Problem(404, "Not found", "no such link on a referral you may read", kind="not-found") from exc
    return FamilyLinkOut.of(link, now)


# --- the page --------------------------------------------------------------------------------------------------

_CSS = files("referrals").joinpath("templates/family/family.css").read_text()
_STYLE_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
PAGE_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FORM_COOKIE = "family_form"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,30}")
_environment = Environment(
    loader=PackageLoader("referrals", "templates/family"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _headers(*, forms: bool) -> dict[str, str]:
    # A page with a form sends its Origin with the post (a "no-referrer" page makes Chrome send "Origin: null").
    return {
        "content-security-policy": PAGE_POLICY,
        "cache-control": "no-store",
        "pragma": "no-cache",
        "referrer-policy": "same-origin" if forms else "no-referrer",
        "x-robots-tag": "noindex, nofollow",
        "x-frame-options": "DENY",
    }


def _render(template: str, status: int = 200, *, forms: bool = False, **values: Any) -> HTMLResponse:
    html = _environment.get_template(template).render(css=_CSS, **values)
    return HTMLResponse(html, status_code=status, headers=_headers(forms=forms))


class FamilyLimits:
    """Token buckets per client address and per link (the shared rate limiter's), in this process."""

    def __init__(self, settings: ReferralsSettings) -> None:
        self.per_ip = Limit(
            settings.family_view_per_ip_per_minute / 60, max(1, int(settings.family_view_per_ip_per_minute))
        )
        self.per_link = Limit(
            settings.family_view_per_link_per_minute / 60, max(1, int(settings.family_view_per_link_per_minute))
        )

    def wait(self, client: str, token: str) -> float:
        now = time.monotonic()
        return max(self.per_ip.wait(client, now), self.per_link.wait(token_hash(token), now))


async def family_limits(request: Request, settings: Settings) -> FamilyLimits:
    limits: FamilyLimits | None = getattr(request.app.state, "family_limits", None)
    if limits is None:
        limits = request.app.state.family_limits = FamilyLimits(settings)
    return limits


Limits = Annotated[FamilyLimits, Depends(family_limits)]


def _limited(request: Request, token: str, limits: FamilyLimits) -> HTMLResponse | None:
    wait = limits.wait(request.client.host if request.client else "unknown", token)
    if wait <= 0:
        return None
    seconds = math.ceil(wait)
    response = _render("rate_limited.html", 429, title="Please wait", wait=_seconds_words(seconds))
    response.headers["retry-after"] = str(seconds)
    return response


def _seconds_words(seconds: int) -> str:
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _refused(exc: LinkRefused | None = None) -> HTMLResponse:
    gone = exc is not None and exc.state in (LinkState.EXPIRED, LinkState.REVOKED)
    return _render("refused.html", 410 if gone else 404, title="This link does not work")


def _form_key(settings: ReferralsSettings) -> bytes:
    return hmac.new(settings.child_ref_key.get_secret_value().encode(), b"family-view-forms", hashlib.sha256).digest()


def _csrf_value(settings: ReferralsSettings, nonce: str, link_id: str) -> str:
    return hmac.new(_form_key(settings), f"{nonce}|{link_id}".encode(), hashlib.sha256).hexdigest()


def _with_form_cookie(request: Request, settings: ReferralsSettings) -> tuple[str, bool]:
    """The browser's form nonce (a new one if it has none); True when it must be set."""
    nonce = request.cookies.get(FORM_COOKIE, "")
    if re.fullmatch(r"[A-Za-z0-9_-]{32,64}", nonce):
        return nonce, False
    return secrets.token_urlsafe(32), True


def _set_form_cookie(response: Response, nonce: str, settings: ReferralsSettings) -> None:
    response.set_cookie(
        FORM_COOKIE, nonce, httponly=True, samesite="strict", path="/family",
        secure=settings.environment == "production",
    )  # fmt: skip


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:8192].decode(errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _form_ok(request: Request, form: dict[str, str], link_id: str, settings: ReferralsSettings) -> bool:
    """Same origin (when the browser says), and the form's token matches the cookie and the link."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    nonce = request.cookies.get(FORM_COOKIE, "")
    if not nonce:
        return False
    return hmac.compare_digest(form.get("csrf", ""), _csrf_value(settings, nonce, link_id))


async def _posted_form(
    token: str,
    request: Request,
    more: UnitOfWorkFactory,
    settings: ReferralsSettings,
    limits: FamilyLimits,
    now: datetime,
) -> dict[str, str] | Response:
    """A family-view form's fields, or the page refusing it: rate limit, a link that works, same origin and
    the form's token (one gate for every form the family can send)."""
    if (limited := _limited(request, token, limits)) is not None:
        return limited
    if not _TOKEN.fullmatch(token):
        return _refused()
    try:
        link = await family_cases.link_for_token(token, more(), now=now)
    except LinkRefused as exc:
        return _refused(exc)
    form = await _form(request)
    if not _form_ok(request, form, link.id, settings):
        return _render("form_refused.html", 403, title="Something went wrong", back=f"/family/{token}")
    return form


def _cards(page: family_cases.FamilyPage) -> list[dict[str, Any]]:
    shown = []
    for card in page.cards:
        hold = hold_wording(card.hold_reason_code) if card.hold_reason_code else None
        shown.append(
            {
                "wait": card.wait,
                "signposts": card.signposts,
                "service_name": card.service_name,
                "organisation_name": card.organisation_name,
                "status": card.status,
                "is_open": card.is_open,
                "words": status_wording(card.status),
                "hold": hold,
                "resume": day_words(card.expected_resume),
                "handed_to": card.handed_to,
                "came_from": card.came_from,
                "rejection": rejection_words(card.rejection_reason_code),
                "outcome": outcome_words(card.outcome_code),
                "referred_on": day_words(card.referred_on),
                "since": day_words(card.since),
                "contact": card.contact,
                "consent": CONSENT_WORDS[card.consent_status],
                "shared_with": card.shared_with,
                "giver": card.consent_given_by,
                "deadline": card.deadline.sentence if card.deadline else None,
                "on_track": card.deadline.on_track if card.deadline else None,
            }
        )
    return shown


def _page_response(
    request: Request, token: str, page: family_cases.FamilyPage, settings: ReferralsSettings, **extra: Any
) -> HTMLResponse:
    nonce, fresh = _with_form_cookie(request, settings)
    response = _render(
        "page.html",
        extra.pop("status", 200),
        forms=True,
        title="Where your child's requests for help are",
        cards=_cards(page),
        contact=extra.pop("contact", page.contact),
        preferences=[(p.value, words) for p, words in CONTACT_PREFERENCE_WORDS.items()],
        csrf=_csrf_value(settings, nonce, page.link.id),
        contact_action=f"/family/{token}/contact",
        take_up_action=f"/family/{token}/take-up",
        withdraw_href=f"/family/{token}/withdraw",
        may_withdraw=page.may_withdraw,
        saved=extra.pop("saved", None),
        error=extra.pop("error", None),
    )
    if fresh:
        _set_form_cookie(response, nonce, settings)
    return response


@pages.get("/family/{token}", response_class=HTMLResponse)
async def family_page(token: str, request: Request, uow: Uow, settings: Settings, limits: Limits) -> Response:
    if (limited := _limited(request, token, limits)) is not None:
        return limited
    if not _TOKEN.fullmatch(token):
        return _refused()
    try:
        page = await family_cases.open_page(token, uow, now=datetime.now(UTC))
    except LinkRefused as exc:
        return _refused(exc)
    return _page_response(request, token, page, settings)


@pages.post("/family/{token}/contact", response_class=HTMLResponse)
async def family_contact(
    token: str, request: Request, more: UowFactory, settings: Settings, limits: Limits
) -> Response:
    now = datetime.now(UTC)
    form = await _posted_form(token, request, more, settings, limits, now)
    if isinstance(form, Response):
        return form
    email, phone = form.get("email", "").strip(), form.get("phone", "").strip()
    preference = form.get("preference", "")
    contact = FamilyContact(
        email or None,
        phone or None,
        ContactPreference(preference) if preference in {p.value for p in ContactPreference} else None,
    )
    error = None
    if email and (len(email) > 254 or not re.fullmatch(EMAIL_PATTERN, email)):
        error = "Enter an email address like name@example.com."
    elif phone and not _PHONE.fullmatch(phone):
        error = "Enter a phone number using numbers only, like 07700 900 123."
    elif preference and contact.preference is None:
        error = "Choose how you would like services to get in touch."
    if error is None:
        await family_cases.update_contact(token, contact, more(), now=now)
    page = await family_cases.open_page(token, more(), now=now)
    if error is not None:
        return _page_response(request, token, page, settings, status=422, error=error, contact=contact)
    return _page_response(request, token, page, settings, saved="Thank you. We have saved how to get in touch.")


@pages.post("/family/{token}/take-up", response_class=HTMLResponse)
async def family_take_up(
    token: str, request: Request, more: UowFactory, settings: Settings, limits: Limits
) -> Response:
    """The family says they are using support they were signposted to: recorded as the take-up event."""
    now = datetime.now(UTC)
    form = await _posted_form(token, request, more, settings, limits, now)
    if isinstance(form, Response):
        return form
    position, offer_id = form.get("request", ""), form.get("offer", "")
    if not re.fullmatch(r"[1-9][0-9]{0,3}", position) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", offer_id):
        return _render("form_refused.html", 422, title="Something went wrong", back=f"/family/{token}")
    try:
        await family_cases.take_up_offer(token, int(position), offer_id, more, now=now, source=settings.event_source)
    except LinkRefused as exc:
        return _refused(exc)
    except (NotFound, SignpostNotFound):
        return _render("form_refused.html", 404, title="Something went wrong", back=f"/family/{token}")
    page = await family_cases.open_page(token, more(), now=now)
    return _page_response(
        request, token, page, settings, saved="Thank you. We have noted that you are using this help."
    )


@pages.get("/family/{token}/withdraw", response_class=HTMLResponse)
async def withdraw_confirmation(token: str, request: Request, uow: Uow, settings: Settings, limits: Limits) -> Response:
    if (limited := _limited(request, token, limits)) is not None:
        return limited
    if not _TOKEN.fullmatch(token):
        return _refused()
    try:
        page = await family_cases.open_page(token, uow, now=datetime.now(UTC))
    except LinkRefused as exc:
        return _refused(exc)
    if not page.may_withdraw:
        return RedirectResponse(f"/family/{token}", status_code=303, headers=_headers(forms=False))
    nonce, fresh = _with_form_cookie(request, settings)
    open_cards = [c for c in _cards(page) if c["is_open"]]
    response = _render(
        "withdraw_confirm.html",
        forms=True,
        title="Are you sure you want to say no to sharing?",
        withdraw=WITHDRAW_WORDS,
        cards=open_cards,
        csrf=_csrf_value(settings, nonce, page.link.id),
        action=f"/family/{token}/withdraw",
        back=f"/family/{token}",
    )
    if fresh:
        _set_form_cookie(response, nonce, settings)
    return response


@pages.post("/family/{token}/withdraw", response_class=HTMLResponse)
async def withdraw(token: str, request: Request, more: UowFactory, settings: Settings, limits: Limits) -> Response:
    now = datetime.now(UTC)
    form = await _posted_form(token, request, more, settings, limits, now)
    if isinstance(form, Response):
        return form
    try:
        await family_cases.withdraw_all_consent(token, more, now=now)
    except LinkRefused as exc:
        return _refused(exc)
    except DomainError:  # e.g. a change made at the same moment: nothing half-done, ask them to try again
        return _render("form_refused.html", 409, title="Something went wrong", back=f"/family/{token}")
    return _render("withdraw_done.html", title="You have said no to sharing", back=f"/family/{token}")
