"""A withdrawal of consent stops onward sharing (issue #17): the three services as processes on the real broker.

A school refers children to CAMHS through the referrals API; each party has a webhook endpoint subscribed to
everything and an email contact. The consent events reach both; a withdrawal before acceptance withdraws the
referral (reason ``consent_withdrawn``) and both hear it; after a withdrawal after acceptance, CAMHS still hears
every move but the school hears nothing more (shown by a later event of another referral that the school does
get); a hand-off outside the consent's scope is refused, and once consent is withdrawn any hand-off is.
"""

from __future__ import annotations

import email
import email.policy
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.tokens import mint_token
from send_devkit.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCHOOL_ORG, CAMHS_ORG = "org-riverside-primary", "org-northshire-camhs"
SCHOOL = {"authorization": f"Bearer {mint_token(SCHOOL_ORG, 'referrer')}"}
CAMHS = {"authorization": f"Bearer {mint_token(CAMHS_ORG, 'receiver')}"}
SCHOOL_MAIL, CAMHS_MAIL = "senco@riverside.example", "duty@northshire-camhs.example"
WITHIN = 20.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    env = {"WEBHOOK_POLL_MS": "100"}
    with DevStack(var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports,
                  smtp_port=free_port(), extra_env=env) as running:  # fmt: skip
        notifications = running.url("notifications")
        for headers, path, mail in ((SCHOOL, "/school", SCHOOL_MAIL), (CAMHS, "/camhs", CAMHS_MAIL)):
            made = httpx.post(f"{notifications}/v1/endpoints", headers=headers,
                              json={"url": f"{receiver.base}{path}", "event_types": ["*"]})  # fmt: skip
            assert made.status_code == 201, made.text
            receiver.secrets[path] = made.json()["secret"]
            contacts = httpx.put(f"{notifications}/v1/contacts", headers=headers, json={"emails": [mail]})
            assert contacts.status_code == 200, contacts.text
        yield running


def submit(stack: DevStack, **consent: Any) -> str:
    body = {
        "service_id": "svc-camhs-core",
        "child": {"given_name": "Sam", "family_name": "Taylor", "date_of_birth": "2015-04-12",
                  "nhs_number": "9434765919"},
        "primary_need": "SEMH",
        "reason": "Anxiety affecting attendance.",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "CAMHS", **consent},
    }  # fmt: skip
    created = httpx.post(f"{stack.url('referrals')}/v1/referrals", json=body,
                         headers={**SCHOOL, "idempotency-key": secrets.token_hex(8)})  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def etag(stack: DevStack, referral_id: str, headers: dict[str, str]) -> str:
    read = httpx.get(f"{stack.url('referrals')}/v1/referrals/{referral_id}", headers=headers)
    assert read.status_code == 200, read.text
    return read.headers["etag"]


def move(stack: DevStack, referral_id: str, body: dict[str, Any], headers: dict[str, str] = CAMHS) -> httpx.Response:
    return httpx.post(f"{stack.url('referrals')}/v1/referrals/{referral_id}/status", json=body,
                      headers={**headers, "if-match": etag(stack, referral_id, headers)})  # fmt: skip


def moved(stack: DevStack, referral_id: str, body: dict[str, Any], headers: dict[str, str] = CAMHS) -> None:
    answer = move(stack, referral_id, body, headers)
    assert answer.status_code == 200, answer.text


def withdraw_consent(stack: DevStack, referral_id: str, headers: dict[str, str]) -> dict[str, Any]:
    url = f"{stack.url('referrals')}/v1/referrals/{referral_id}/consent"
    body = {"action": "withdraw", "given_by": "parent"}
    answer = httpx.post(url, json=body, headers={**headers, "idempotency-key": secrets.token_hex(8)})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def events(receiver: Receiver, path: str, referral_id: str) -> list[dict[str, Any]]:
    """The verified events about ``referral_id`` that reached ``path``, once each, in arrival order."""
    seen: dict[str, dict[str, Any]] = {}
    for r in receiver.successes(path):
        if r.verified and (r.body.get("data") or {}).get("referral_id") == referral_id:
            seen.setdefault(r.webhook_id, r.body)
    return list(seen.values())


def types(receiver: Receiver, path: str, referral_id: str) -> list[str]:
    """The types of the referral and consent events about ``referral_id`` at ``path`` (clock events aside)."""
    return [e["type"] for e in events(receiver, path, referral_id) if e["type"].startswith("uk.send.referral.")]


def wait_until(condition: Callable[[], bool], what: str, explain: Callable[[], object] | None = None) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WITHIN:g} s: {what}" + (f"; {explain()}" if explain else ""))
        time.sleep(0.1)


def mails(stack: DevStack) -> list[tuple[str, str]]:
    """(recipient, subject) of every email the stack sent, oldest first."""
    found = []
    for path in sorted((stack.var_dir / "mail").glob("*.eml")):
        message = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        found.append((str(message["To"]), " ".join(str(message["Subject"]).split())))
    return found


def problem_rule(answer: httpx.Response) -> str:
    problem = answer.json()
    return str(problem.get("rule") or next((e.get("rule") for e in problem.get("errors", []) if e.get("rule")), ""))


CONSENT_WITHDRAWN = "uk.send.referral.consent.withdrawn.v1"


def test_a_withdrawal_before_acceptance_withdraws_the_referral_and_both_hear_it(
    stack: DevStack, receiver: Receiver
) -> None:
    referral = submit(stack)
    withdraw_consent(stack, referral, SCHOOL)
    wanted = ["uk.send.referral.submitted.v1", "uk.send.referral.consent.given.v1", CONSENT_WITHDRAWN,
              "uk.send.referral.withdrawn.v1"]  # fmt: skip
    for path in ("/school", "/camhs"):
        wait_until(lambda: types(receiver, path, referral) == wanted, f"{path} heard the withdrawal",  # noqa: B023
                   lambda: types(receiver, path, referral))  # noqa: B023  # fmt: skip
        ended = events(receiver, path, referral)[-1]["data"]
        assert (ended["status"], ended["reason_code"]) == ("withdrawn", "consent_withdrawn")
    read = httpx.get(f"{stack.url('referrals')}/v1/referrals/{referral}", headers=CAMHS).json()
    assert read["status"] == "withdrawn"
    wait_until(lambda: {to for to, subject in mails(stack) if "Consent withdrawn" in subject and referral[:8] in subject}
               == {SCHOOL_MAIL, CAMHS_MAIL}, "both emailed about the withdrawal", lambda: mails(stack))  # fmt: skip


def test_after_a_withdrawal_after_acceptance_only_the_receiver_hears_and_no_hand_off_goes(
    stack: DevStack, receiver: Receiver
) -> None:
    referral = submit(stack, scope_service_ids=["svc-camhs-core", "svc-ehc-assessment"])
    moved(stack, referral, {"status": "accepted"})
    outside = move(stack, referral, {"status": "handed_off", "target_service_id": "svc-trust-slt"})
    assert outside.status_code == 409, outside.text
    assert problem_rule(outside) == "outside_consent_scope", outside.text

    withdraw_consent(stack, referral, CAMHS)
    for path in ("/school", "/camhs"):
        wait_until(lambda: CONSENT_WITHDRAWN in types(receiver, path, referral),  # noqa: B023 (waited for here)
                   f"{path} heard consent withdrawn", lambda: types(receiver, path, referral))  # noqa: B023  # fmt: skip
    read = httpx.get(f"{stack.url('referrals')}/v1/referrals/{referral}", headers=CAMHS).json()
    assert read["status"] == "accepted", "after acceptance the referral stays open: the receiver decides"
    inside = move(stack, referral, {"status": "handed_off", "target_service_id": "svc-ehc-assessment"})
    assert inside.status_code == 409, inside.text
    assert problem_rule(inside) == "consent_withdrawn", inside.text

    moved(stack, referral, {"status": "scheduled", "appointment_at": "2027-01-14T10:00:00Z"})
    moved(stack, referral, {"status": "in_progress"})
    moved(stack, referral, {"status": "completed", "outcome_code": "discharged"})
    later = ["uk.send.referral.scheduled.v1", "uk.send.referral.in_progress.v1", "uk.send.referral.completed.v1"]
    wait_until(lambda: types(receiver, "/camhs", referral)[-3:] == later, "CAMHS heard every later move",
               lambda: types(receiver, "/camhs", referral))  # fmt: skip

    # The positive signal: a later event of another referral reaches the school (its deliveries go oldest
    # first), and its acceptance email arrives; by then anything about the first referral would have too.
    other = submit(stack)
    moved(stack, other, {"status": "accepted"})
    wait_until(lambda: "uk.send.referral.accepted.v1" in types(receiver, "/school", other),
               "the school heard the other referral's acceptance")  # fmt: skip
    wait_until(lambda: any(to == SCHOOL_MAIL and "accepted by" in s and other[:8] in s for to, s in mails(stack)),
               "the school's email about the other referral's acceptance", lambda: mails(stack))  # fmt: skip
    school = [e["type"] for e in events(receiver, "/school", referral)]  # clock events too
    assert school[-1] == CONSENT_WITHDRAWN and not set(later) & set(school), school
    school_mail = [s for to, s in mails(stack) if to == SCHOOL_MAIL and referral[:8] in s]
    assert len(school_mail) == 2 and any("Consent withdrawn" in s for s in school_mail), school_mail
    assert any(to == CAMHS_MAIL and referral[:8] in s and "Consent withdrawn" in s for to, s in mails(stack))
