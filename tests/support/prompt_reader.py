"""Reading a judge prompt back: what the fake judge servers and the benchmarks do with a request."""

from __future__ import annotations

from perception_verl.judge.prompt import FACTS_HEADER, RESPONSE_CLOSE, USER_SUFFIX, user_prefix


def split_user_message(text: str) -> tuple[list[str], str]:
    """Inverse of ``build_user_message``: return ``(annotations, response)``; ValueError if not ours."""
    head = f"{FACTS_HEADER}\n"
    if not text.startswith(head):
        raise ValueError(f"user message does not start with {FACTS_HEADER!r}")
    end_of_facts = text.find("\n\n", len(head))
    if end_of_facts < 0:
        raise ValueError("user message has no blank line after the facts")
    facts: list[str] = []
    for index, line in enumerate(text[len(head) : end_of_facts].split("\n"), start=1):
        number = f"{index}. "
        if not line.startswith(number):
            raise ValueError(f"fact line {index} does not start with {number!r}: {line[:60]!r}")
        facts.append(line[len(number) :])
    prefix = user_prefix(facts)
    if not text.startswith(prefix):
        raise ValueError("user message does not match the judge prompt layout after the facts")
    if not text.endswith(USER_SUFFIX) or len(text) < len(prefix) + len(USER_SUFFIX):
        raise ValueError(f"user message does not end with {RESPONSE_CLOSE!r}")
    return facts, text[len(prefix) : len(text) - len(USER_SUFFIX)]
