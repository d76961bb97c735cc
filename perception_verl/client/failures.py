"""Failure kinds of a judge call and which of them are worth another try: decided here, once.

Every failed request or judge call is named by a kind (``ChatError.kind``, ``JudgeResult.failure``)
and counted under it. :func:`retryable` is the one rule the retry owner (the deadline-aware judge,
:class:`~perception_verl.judge.budget.BudgetedJudge`; the chat client's own retries in offline tools)
applies:

- worth another try within the deadline (the server may answer next time): ``timeout``,
  ``connection``, ``reset``, ``bad_json`` (a proxy's page instead of JSON), ``http_429`` (after its
  ``Retry-After``, capped), ``http_5xx``, ``unavailable`` (the judge could not be started) and
  ``error:<Exception>`` (a backend that raised);
- final at once (the same request would fail the same way): every other ``http_4xx``,
  ``context_length`` (a 400 saying the prompt and answer budget exceed the judge's context),
  ``http_401``/``http_403`` (auth), ``redirect`` (a 3xx: never followed), ``oversize`` (a reply past
  the size bound), ``truncated`` (cut at the answer budget), ``malformed:<kind>`` (still malformed
  after the judge's re-asks: greedy decoding repeats it) and ``step_deadline``.

A final kind leaves the sample's perception out (excluded, never scored 0); ``docs/troubleshooting.md``
says what each kind means and what to do.
"""

from __future__ import annotations

RETRYABLE = frozenset({"timeout", "connection", "reset", "bad_json", "http_429", "unavailable"})
"""Kinds worth another try besides ``http_5xx`` and ``error:<Exception>``."""

REDIRECT = "redirect"
"""A 3xx answer: the client follows no redirect (it would send the prompt elsewhere, or accept a
verdict for a request the other host never saw)."""

OVERSIZE = "oversize"
"""A reply larger than the client's bound (``max_reply_bytes``); it is not read further."""

CONTEXT_LENGTH = "context_length"
"""A 400 whose body says the request exceeds the judge's context length."""


def retryable(kind: str | None) -> bool:
    """True when a failure of ``kind`` may go away if the same request is sent again."""
    if not kind:
        return False
    if kind in RETRYABLE or kind.startswith("error:"):
        return True
    return kind.startswith("http_5")
