"""Email: render an intent as a plain-text and HTML message, and send it over SMTP."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifications.domain.email_policy import ContextValue, EmailIntent, Template

LONDON = ZoneInfo("Europe/London")

_SUBJECTS = {
    Template.ACCEPTED: ("Referral accepted", "Referral accepted by {service_name}"),
    Template.REJECTED: ("Referral not accepted", "Referral not accepted by {service_name}"),
    Template.SCHEDULED: ("Appointment booked", "Appointment booked with {service_name}"),
    Template.HANDED_OFF: ("Referral passed to another service", "Referral passed on by {service_name}"),
    Template.BREACH_IMMINENT: ("Waiting time deadline approaching", "Deadline on {breach_day} at {service_name}"),
    Template.NEW_REFERRAL: ("New referral received", "New {urgency_label} referral for {service_name}"),
    Template.NEW_REFERRALS_DIGEST: ("New referrals received", "{referral_count} since the last summary ({digest_day})"),
    Template.CONSENT_WITHDRAWN: ("Consent withdrawn", "Consent withdrawn for a referral to {service_name}"),
}
_URGENCIES = {"routine": "routine", "urgent": "urgent", "very_urgent": "very urgent"}
# DfE SEN2 primary need codes
_NEEDS = {
    "SPLD": "specific learning difficulty",
    "MLD": "moderate learning difficulty",
    "SLD": "severe learning difficulty",
    "PMLD": "profound and multiple learning difficulty",
    "SEMH": "social, emotional and mental health",
    "SLCN": "speech, language and communication needs",
    "HI": "hearing impairment",
    "VI": "vision impairment",
    "MSI": "multi-sensory impairment",
    "PD": "physical disability",
    "ASD": "autistic spectrum disorder",
    "OTH": "other difficulty or disability",
    "NSA": "SEN support but no specialist assessment of type of need",
}
_REASONS = {
    "threshold_not_met": "the referral does not meet the service's threshold",
    "outside_remit": "the need is outside the service's remit",
    "insufficient_information": "there was not enough information to decide",
    "needs_met_elsewhere": "the child's needs are already being met elsewhere",
    "duplicate": "the referral duplicates another one",
}
# Who gave or withdrew consent (ConsentGiver codes), as a role: never a name.
_GIVERS = {
    "parent": "the child's parent",
    "carer": "the child's carer",
    "young_person": "the young person",
    "local_authority": "the local authority with parental responsibility",
}
_CLOCKS = {
    "ehc_decision_6w": "6-week deadline to decide whether to carry out an EHC needs assessment",
    "ehc_no_plan_16w": "16-week deadline to tell the family that no EHC plan will be issued",
    "ehc_plan_20w": "20-week deadline to issue a final EHC plan",
    "rtt_18w": "18-week referral to treatment standard",
    "cypmh_4w": "4-week waiting time standard for mental health support",
    "cypmh_ed": "waiting time standard for eating disorder services",
    "cypmh_crisis": "response time standard for urgent crisis care",
}


def _days(value: ContextValue) -> str:
    return f"{value} day" if value == 1 else f"{value} days"


_environment = Environment(
    loader=PackageLoader("notifications", "templates/email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_environment.filters["days"] = _days


def render(
    intent: EmailIntent, *, service_names: Mapping[str, str], referral_url: str, mail_from: str, to: list[str]
) -> EmailMessage:
    """A multipart/alternative message for ``intent``; ``referral_url`` holds a ``{referral_id}`` placeholder."""
    if not to:
        raise ValueError("an email needs at least one recipient")
    values = _template_values(intent.context, service_names, referral_url)
    heading, subject = _SUBJECTS[intent.template]
    values["heading"] = heading
    reference = f" (ref {values['short_ref']})" if values["short_ref"] else ""
    values["subject"] = _one_line(subject.format(**values) + reference)
    message = EmailMessage()
    message["Subject"] = values["subject"]
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(_environment.get_template(f"{intent.template}.txt").render(values))
    message.add_alternative(_environment.get_template(f"{intent.template}.html").render(values), subtype="html")
    return message


def _template_values(
    context: Mapping[str, ContextValue], service_names: Mapping[str, str], referral_url: str
) -> dict[str, object]:
    def service(key: str) -> str | None:
        service_id = context.get(key)
        return service_names.get(str(service_id), str(service_id)) if service_id else None

    def link(key: str) -> str | None:
        return _link(referral_url, context.get(key))

    reason, clock, giver = context.get("reason_code"), context.get("clock"), context.get("given_by")
    return {
        **context,
        **_referral_values(context, service_names, referral_url),
        "referral_lines": [_referral_values(line, service_names, referral_url) for line in _lines(context)],
        "referral_count": _count(context.get("count"), "new referral") if "count" in context else None,
        "digest_day": _day(context.get("digest_date")),
        "linked_short_ref": _short(context.get("linked_referral_id")),
        "linked_referral_link": link("linked_referral_id"),
        "signposted_service_name": service("signposted_service_id"),
        "onward_service_name": service("onward_service_id"),
        "reason_label": _REASONS.get(str(reason), str(reason).replace("_", " ")) if reason else "not given",
        "clock_label": _CLOCKS.get(str(clock), f"{str(clock).replace('_', ' ')} deadline") if clock else None,
        "occurred_on": _day(context.get("occurred_at")),
        "giver_label": _GIVERS.get(str(giver), str(giver).replace("_", " ")) if giver else "the family",
        "appointment": _appointment(context.get("appointment_at")),
        "breach_day": _day(context.get("breach_date")),
        "raised_day": _day(context.get("raised_on")),
    }


def _referral_values(
    context: Mapping[str, ContextValue], service_names: Mapping[str, str], referral_url: str
) -> dict[str, str | None]:
    """What a new-referral email says about its referral (and a digest about each of its referrals)."""
    referral_id, service_id = context.get("referral_id"), context.get("service_id")
    urgency = context.get("urgency")
    return {
        "short_ref": _short(referral_id),
        "referral_link": _link(referral_url, referral_id),
        "service_name": service_names.get(str(service_id), str(service_id)) if service_id else "the service",
        "urgency_label": _URGENCIES.get(str(urgency), str(urgency).replace("_", " ")) if urgency else "",
        "need_label": _need(context.get("primary_need")),
        "received_on": _day(context.get("occurred_at")),
    }


def _need(code: ContextValue) -> str:
    """``SEMH (social, emotional and mental health)`` for a known code; an unknown one as it is."""
    if not code:
        return "not given"
    label = _NEEDS.get(str(code).upper())
    return f"{code} ({label})" if label else str(code)


def _link(referral_url: str, referral_id: ContextValue) -> str | None:
    return referral_url.format(referral_id=quote(str(referral_id), safe="")) if referral_id else None


def _lines(context: Mapping[str, ContextValue]) -> list[dict[str, ContextValue]]:
    referrals = context.get("referrals")
    return [dict(line) for line in referrals] if isinstance(referrals, list) else []


def _count(value: ContextValue, noun: str) -> str:
    return f"1 {noun}" if value == 1 else f"{value} {noun}s"


def _short(referral_id: ContextValue) -> str | None:
    return str(referral_id)[:8] if referral_id else None


def _one_line(text: str, limit: int = 200) -> str:
    """Header-safe: directory names are organisation-supplied, so no line breaks or control characters."""
    return re.sub(r"[\x00-\x1f\x7f\s]+", " ", text).strip()[:limit]


def _day(value: ContextValue) -> str | None:
    """``Friday 13 March 2026`` for an ISO date, or the date part of an ISO time (in London)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    day: date = parsed.astimezone(LONDON).date() if parsed.tzinfo else parsed.date()
    return f"{day:%A} {day.day} {day:%B %Y}"


def _appointment(value: ContextValue) -> str | None:
    """``Tuesday 3 March 2026 at 10:30am`` in London time (a time without zone is taken as London time)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    local = parsed.astimezone(LONDON) if parsed.tzinfo else parsed
    hour = local.hour % 12 or 12
    return f"{local:%A} {local.day} {local:%B %Y} at {hour}:{local:%M}{'am' if local.hour < 12 else 'pm'}"
