"""Judge prompt layouts the benchmarks compare with ours, and a reader that understands all of them.

Shared by the benchmarks (``benchmarks/_judge_server.py``, ``_baseline.py``) and the engine tests.

- ``ours`` (:func:`perception_verl.judge.prompt.build_messages`): system = instructions + examples;
  user = facts, instruction line, then the response last. All rollouts of a problem share everything
  up to the response.
- ``response_first``: one user message that opens with the response, then the instructions and
  examples, then the facts. Nothing a later request could reuse comes before per-response text.
- ``system_then_response``: our system message first (shared by every request), then a user
  message with the response before the facts: only the system prompt is shared.

The texts reuse our system prompt and instruction line, so the layouts differ only in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perception_verl.judge.prompt import (
    FACTS_HEADER,
    RESPONSE_CLOSE,
    RESPONSE_OPEN,
    SYSTEM_PROMPT,
    build_messages,
    normalize_annotation,
)
from tests.support.prompt_reader import split_user_message

LAYOUTS = ("ours", "response_first", "system_then_response")
_INSTRUCTION = "Check each fact below against the response above. Answer with exactly {n} tags."


def _facts_block(facts: Sequence[str]) -> str:
    numbered = "\n".join(f"{i}. {normalize_annotation(f)}" for i, f in enumerate(facts, start=1))
    return f"{FACTS_HEADER}\n{numbered}"


def _response_block(response: str) -> str:
    return f"{RESPONSE_OPEN}\n{response}\n{RESPONSE_CLOSE}"


def layout_messages(layout: str, facts: Sequence[str], response: str) -> list[dict[str, str]]:
    """Chat messages for one judge request in ``layout`` (one of :data:`LAYOUTS`)."""
    if layout == "ours":
        return build_messages(facts, response)
    tail = f"{_INSTRUCTION.format(n=len(facts))}\n{_facts_block(facts)}"
    if layout == "response_first":
        text = f"{_response_block(response)}\n\n{SYSTEM_PROMPT}\n\n{tail}"
        return [{"role": "user", "content": text}]
    if layout == "system_then_response":
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{_response_block(response)}\n\n{tail}"},
        ]
    raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def read_request(messages: Sequence[dict[str, Any]]) -> tuple[list[str], str]:
    """(facts, response) of a judge request in any of :data:`LAYOUTS`; ValueError if none fits."""
    user = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), None)
    if user is None:
        raise ValueError("judge request has no user message")
    if user.startswith(FACTS_HEADER):
        return split_user_message(user)
    opener = f"{RESPONSE_OPEN}\n"
    closer = f"\n{RESPONSE_CLOSE}\n\n"
    if not user.startswith(opener) or closer not in user:
        raise ValueError("judge request is in none of the known layouts")
    end = user.rindex(closer)
    response = user[len(opener) : end]
    facts_at = user.rindex(f"\n{FACTS_HEADER}\n")
    lines = user[facts_at + len(FACTS_HEADER) + 2 :].split("\n")
    facts = []
    for index, line in enumerate(lines, start=1):
        number = f"{index}. "
        if not line.startswith(number):
            raise ValueError(f"fact line {index} does not start with {number!r}")
        facts.append(line[len(number) :])
    return facts, response
