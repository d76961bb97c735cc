"""Errors raised by the chat client."""

from __future__ import annotations

from perception_verl.errors import PerceptionVerlError


class ChatError(PerceptionVerlError, RuntimeError):
    """A chat request that failed for good (after its retries, or at once for a non-retryable answer).

    ``kind`` names the last fault: ``"timeout"``, ``"connection"`` (could not connect),
    ``"reset"`` (connection dropped mid-request), ``"http_<status>"``, ``"context_length"`` (a 400 saying
    the request exceeds the judge's context), ``"redirect"`` (a 3xx, never followed), ``"oversize"`` (a
    reply past the size bound) or ``"bad_json"``; :func:`perception_verl.client.failures.retryable` says
    which are worth another try.
    ``attempts`` counts the HTTP requests this call sent; ``retry_after_s`` is the server's
    ``Retry-After`` hint, when it gave one.
    """

    def __init__(
        self, kind: str, message: str = "", *, attempts: int = 0, retry_after_s: float | None = None
    ) -> None:
        self.kind = kind
        self.attempts = attempts
        self.retry_after_s = retry_after_s
        super().__init__(f"{kind}: {message}" if message else kind)


class JudgeUnavailable(PerceptionVerlError, RuntimeError):
    """The start-up health check found no usable server; the message names each URL and its fault."""


class ClientLoopError(PerceptionVerlError, RuntimeError):
    """A :class:`~perception_verl.client.chat.ChatClient` used from an event loop other than its own."""
