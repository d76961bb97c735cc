"""Which server speaks at a judge URL, and how each one spells constrained output.

SGLang and vLLM both serve OpenAI's ``/v1/chat/completions`` but take a regex constraint in different
request fields, and each silently ignores the other's:

- SGLang: a top-level ``"regex"`` in the chat request (``ChatCompletionRequest.regex``, passed to
  its sampling parameters in ``to_sampling_params``; sgl-project/sglang
  ``python/sglang/srt/entrypoints/openai/protocol.py``).
- vLLM >= 0.12: ``"structured_outputs": {"regex": ...}`` (``ChatCompletionRequest.structured_outputs``,
  a ``StructuredOutputsParams`` whose ``regex`` field it validates; vllm 0.32
  ``vllm/entrypoints/openai/chat_completion/protocol.py`` and ``vllm/sampling_params.py``). The older
  ``guided_regex`` field is gone and, like SGLang's ``regex``, is accepted and ignored.

Both name themselves in the model cards of ``GET /v1/models``: ``owned_by`` is ``"sglang"``
(SGLang's ``ModelCard``) or ``"vllm"`` (vLLM's ``ModelCard`` in
``vllm/entrypoints/serve/engine/protocol.py``). :func:`dialect_of_models` reads that;
``auto`` relies on it. The functions here are pure; the client does the HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perception_verl.errors import PerceptionVerlError

DIALECTS = ("sglang", "vllm")
SERVER_SETTINGS = ("auto", *DIALECTS)


class DialectError(PerceptionVerlError, RuntimeError):
    """The judge server's dialect is unknown, mixed or contradicts the ``judge_server`` setting."""


def check_setting(value: str) -> str:
    """``value`` normalised; ValueError unless it is one of :data:`SERVER_SETTINGS`."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in SERVER_SETTINGS:
        raise ValueError(f"judge server must be one of {', '.join(SERVER_SETTINGS)}; got {value!r}")
    return text


def dialect_of_models(payload: Any, model: str) -> tuple[str | None, str | None]:
    """(dialect or None, ``owned_by`` as found) from a ``/v1/models`` body, for the served ``model``."""
    try:
        cards = [c for c in payload["data"] if isinstance(c, Mapping)]
    except (KeyError, TypeError):
        return None, None
    card = next((c for c in cards if str(c.get("id")) == model), cards[0] if cards else None)
    if card is None:
        return None, None
    owner = card.get("owned_by")
    owner = str(owner) if owner is not None else None
    dialect = owner.strip().lower() if owner else None
    return (dialect if dialect in DIALECTS else None), owner


def resolve_dialect(setting: str, detected: Mapping[str, str | None]) -> str | None:
    """The dialect to speak to these replicas (``detected``: URL -> dialect found, None if unknown).

    An explicit setting wins over replicas that do not say what they are, but one that says otherwise
    is an error; ``auto`` gives the common dialect when every replica named the same one, None when
    any is unknown, and an error when they differ.
    """
    known = {url: d for url, d in detected.items() if d is not None}
    if setting != "auto":
        wrong = {url: d for url, d in known.items() if d != setting}
        if wrong:
            found = ", ".join(f"{url} is {d}" for url, d in wrong.items())
            raise DialectError(
                f"judge_server={setting} but {found}; set judge_server to auto or to what the server is"
            )
        return setting
    kinds = set(known.values())
    if len(kinds) > 1:
        found = ", ".join(f"{url} is {d}" for url, d in known.items())
        raise DialectError(f"judge replicas are different servers ({found}); serve one kind behind the URLs")
    if len(known) < len(detected) or not kinds:
        return None
    return kinds.pop()


def regex_fields(dialect: str, pattern: str) -> dict[str, Any]:
    """The request fields that constrain the answer to ``pattern`` on a ``dialect`` server."""
    if dialect == "sglang":
        return {"regex": pattern}
    if dialect == "vllm":
        return {"structured_outputs": {"regex": pattern}}
    raise DialectError(f"no regex constraint known for server {dialect!r}")
