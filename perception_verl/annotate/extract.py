"""Validate an extraction model's reply: a JSON list of short, distinct, non-empty fact strings.

Accepted replies (after stripping a Markdown code fence, if any):
- a JSON array of strings;
- a JSON object with a ``"facts"`` array (what JSON-object output modes produce);
- either of those embedded in surrounding prose (the outermost ``[...]`` or ``{...}`` is tried).
Facts are whitespace-normalised, blanks dropped and exact duplicates (ignoring case) removed,
keeping the first. Anything else raises :class:`ExtractionError` whose message says what was wrong,
worded so that it can be sent back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.errors import PerceptionVerlError

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")
_INFO_TAG = re.compile(r"</?info\d*>", re.IGNORECASE)


class ExtractionError(PerceptionVerlError, ValueError):
    """An extraction reply that is not a usable list of facts."""


def _decode(text: str) -> Any:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise ExtractionError("the reply was empty")
    try:
        return json.loads(body)
    except json.JSONDecodeError as first_error:
        for opener, closer in (("[", "]"), ("{", "}")):
            start, end = body.find(opener), body.rfind(closer)
            if 0 <= start < end:
                try:
                    return json.loads(body[start : end + 1])
                except json.JSONDecodeError:
                    continue
        raise ExtractionError(
            f"the reply is not valid JSON ({first_error.msg} at position {first_error.pos})"
        ) from None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        facts = value.get("facts")
        if isinstance(facts, list):
            return facts
        raise ExtractionError('the JSON object has no "facts" array')
    raise ExtractionError(f"expected a JSON array of strings, got a JSON {type(value).__name__}")


def normalise_facts(items: list[Any]) -> list[str]:
    """Whitespace-normalise, drop blanks and case-insensitive duplicates; raise on non-string items."""
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ExtractionError(f"item {index} is a JSON {type(item).__name__}, not a string")
    seen: set[str] = set()
    facts: list[str] = []
    for item in items:
        fact = _WHITESPACE.sub(" ", item).strip()
        key = fact.casefold()
        if fact and key not in seen:
            seen.add(key)
            facts.append(fact)
    return facts


def parse_fact_list(text: str, *, max_facts: int = 12, max_chars: int = 300) -> list[str]:
    """Return the facts of an extraction reply, or raise :class:`ExtractionError` saying why not."""
    facts = normalise_facts(_as_list(_decode(text)))
    if not facts:
        raise ExtractionError("the list holds no non-empty facts")
    if len(facts) > max_facts:
        raise ExtractionError(f"the list holds {len(facts)} facts, more than the limit of {max_facts}")
    for index, fact in enumerate(facts):
        if len(fact) > max_chars:
            raise ExtractionError(
                f"fact {index} is {len(fact)} characters long, over the limit of {max_chars}"
            )
        if _INFO_TAG.search(fact):
            raise ExtractionError(f"fact {index} contains an <info> tag")
    try:
        return parse_annotations(facts)
    except AnnotationError as error:
        raise ExtractionError(str(error)) from None
