"""Consumer runtime: inbox de-duplication, commit after success, retry with backoff, dead-letter topic."""

from send_shared.consumer.runtime import ConsumerRuntime, Handler, PermanentError

__all__ = ["ConsumerRuntime", "Handler", "PermanentError"]
