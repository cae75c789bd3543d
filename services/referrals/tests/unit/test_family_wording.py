"""The family view's words: every status and hold reason has plain English and a "what happens next", at a reading
age of about 9 to 11 (Flesch-Kincaid grade 6 or under, computed here), with no codes or jargon."""

from __future__ import annotations

import re

import pytest

from referrals.domain import family
from referrals.domain.codes import HoldReason, Outcome, RejectionReason
from referrals.domain.lifecycle import Status
from send_shared.events.schemas import ConsentStatus

# Reading age 9 to 11 is UK school years 5 to 6: US grade 4 to 6.
MAX_GRADE = 6.0
JARGON = ("referral", "acknowledged", "consent", "remit", "threshold", "capacity", "_", "ehc_", "svc-", "org-")


def syllables(word: str) -> int:
    """Vowel groups, less a silent final e (but not -le), at least one: the usual estimate."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 0
    groups = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and groups > 1:
        groups -= 1
    if w.endswith("ed") and not w.endswith(("ted", "ded")) and groups > 1:
        groups -= 1
    return max(1, groups)


def grade(text: str) -> float:
    sentences = [s for s in re.split(r"[.!?:]+", text) if s.strip()]
    words = re.findall(r"[A-Za-z][A-Za-z'\u2019-]*", text)
    assert sentences and words, text
    return 0.39 * len(words) / len(sentences) + 11.8 * sum(map(syllables, words)) / len(words) - 15.59


def test_the_readability_formula_tells_plain_from_official_words() -> None:
    assert grade("The cat sat on the mat. It was a sunny day.") < 2
    official = (
        "The referral has been acknowledged by the receiving organisation, which will determine eligibility "
        "in accordance with its commissioning arrangements and statutory obligations."
    )
    assert grade(official) > 12


@pytest.mark.parametrize("status", list(Status))
def test_every_status_has_plain_words_and_what_happens_next(status: Status) -> None:
    words = family.STATUS_WORDS[status]
    assert words.now.strip() and words.next.strip()
    text = f"{words.now} {words.next}"
    assert grade(text) <= MAX_GRADE, (status, round(grade(text), 1), text)
    assert not any(j in text.lower() for j in JARGON), text


@pytest.mark.parametrize("reason", list(HoldReason))
def test_every_hold_reason_has_plain_words_and_what_happens_next(reason: HoldReason) -> None:
    words = family.HOLD_REASON_WORDS[reason]
    assert words.now.strip() and words.next.strip()
    text = f"{words.now} {words.next}"
    assert grade(text) <= MAX_GRADE, (reason, round(grade(text), 1), text)
    assert not any(j in text.lower() for j in JARGON), text


@pytest.mark.parametrize(
    "text",
    [
        *family.REJECTION_WORDS.values(),
        *family.OUTCOME_WORDS.values(),
        *(f"{w.now} {w.next}" for w in family.CONSENT_WORDS.values()),
        f"{family.WITHDRAW_WORDS.now} {family.WITHDRAW_WORDS.next}",
    ],
)
def test_every_other_sentence_set_reads_at_age_9_to_11(text: str) -> None:
    assert grade(text) <= MAX_GRADE, (round(grade(text), 1), text)


def test_rejections_outcomes_and_consent_are_all_worded() -> None:
    assert set(family.REJECTION_WORDS) == set(RejectionReason)
    assert set(family.OUTCOME_WORDS) == set(Outcome)
    assert set(family.CONSENT_WORDS) == {*ConsentStatus, None}
    assert family.hold_wording("not-a-code") is None and family.rejection_words(None) is None


def test_a_token_has_256_bits_and_only_its_hash_is_kept() -> None:
    token = family.new_token()
    assert len(token) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)  # 32 bytes, URL-safe base64
    import hashlib

    assert family.token_hash(token) == hashlib.sha256(token.encode()).hexdigest() != token
    assert len({family.new_token() for _ in range(1000)}) == 1000
