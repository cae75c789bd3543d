"""A worker is woken for queued work only once the consumer's transaction has committed, and only if work was queued."""

from __future__ import annotations

from send_shared.consumer.wake import WakeAfterCommit


def test_a_wake_comes_at_the_commit_after_work_was_queued_and_only_then() -> None:
    woken: list[str] = []
    wake = WakeAfterCommit(lambda: woken.append("up"))
    wake.committed()  # a transaction that queued nothing
    assert woken == []
    wake.queued()
    wake.queued()
    assert woken == [], "not before the commit"
    wake.committed()
    assert woken == ["up"], "once for the transaction, however much it queued"
    wake.committed()
    assert woken == ["up"]


def test_the_private_fetch_wait_the_runtime_paces_is_still_aiokafkas() -> None:
    """The runtime lengthens an idle consumer's fetch wait through aiokafka's private attribute (it has no
    public way to change it after start): an aiokafka that renamed it must fail here, not idle busily."""
    import inspect

    from aiokafka.consumer.fetcher import Fetcher

    assert "self._fetch_max_wait_ms" in inspect.getsource(Fetcher)
