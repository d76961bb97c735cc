"""Parse a problem's visual annotations from either published form.

Accepted inputs:
- a sequence of strings (``["JKLM is a parallelogram", "JK = 3f - 6"]``), including numpy arrays
  of strings as parquet round-trips produce them;
- the reference trainer's text form ``<info1>fact</info1><info2>fact</info2>``;
- ``None`` or an empty value, meaning "no annotations".
Each fact is stripped; empty facts are dropped. Anything else raises :class:`AnnotationError`
naming the row, and so does malformed tagged text: an unbalanced, mismatched, nested or repeated
``<infoK>`` tag, text outside the tags, or a raw tag left inside a fact of either form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from perception_verl.errors import PerceptionVerlError

_ANY_TAG = re.compile(r"</?info\d*>", re.IGNORECASE)
_PAIR = re.compile(r"\s*<info(\d+)>(.*?)</info(\d+)>\s*", re.DOTALL | re.IGNORECASE)


class AnnotationError(PerceptionVerlError, ValueError):
    """Annotations that are not text, raised with the offending row named."""


def _where(row: object | None) -> str:
    return f" in row {row!r}" if row is not None else ""


def _malformed(text: str, problem: str, row: object | None) -> AnnotationError:
    return AnnotationError(f"malformed <infoK> annotations{_where(row)}: {problem}; text: {text[:200]!r}")


def parse_info_tags(text: str, *, row: object | None = None) -> list[str]:
    """Return the facts of ``<infoK>...</infoK>`` text in K order (plain text without tags: one fact).

    The text must be a sequence of balanced ``<infoK>fact</infoK>`` pairs with distinct K and nothing
    but whitespace between them; anything else raises :class:`AnnotationError` naming the row.
    """
    if not _ANY_TAG.search(text):
        return [text]
    found: dict[int, str] = {}
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None:
            rest = text[position:].strip()
            if not rest:
                break
            tagged = rest.lower().startswith(("<info", "</info"))
            problem = "an unbalanced tag" if tagged else "text outside the tags"
            raise _malformed(text, f"{problem} at {rest[:40]!r}", row)
        opened, body, closed = match.groups()
        if _ANY_TAG.search(body):
            raise _malformed(text, f"a tag nested inside <info{opened}>", row)
        if opened != closed:
            raise _malformed(text, f"<info{opened}> closed by </info{closed}> (mismatched tags)", row)
        if int(opened) in found:
            raise _malformed(text, f"<info{opened}> appears twice", row)
        found[int(opened)] = body
        position = match.end()
    return [found[k] for k in sorted(found)]


def parse_annotations(value: Any, *, row: object | None = None) -> list[str]:
    """Normalise ``value`` into a list of non-empty, stripped annotation strings."""
    if value is None:
        return []
    if isinstance(value, bytes):
        raise AnnotationError(f"annotations must be text, got bytes{_where(row)}")
    if isinstance(value, str):
        items: Iterable[Any] = parse_info_tags(value, row=row) if value.strip() else []
    elif hasattr(value, "tolist") and not isinstance(value, dict):
        items = value.tolist()
        if not isinstance(items, list):
            items = [items]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise AnnotationError(
            f"annotations must be a list of strings or '<info1>...</info1>' text, "
            f"got {type(value).__name__}{_where(row)}"
        )
    facts: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise AnnotationError(f"annotation {index} is {type(item).__name__}, not text{_where(row)}")
        fact = item.strip()
        if _ANY_TAG.search(fact):
            raise AnnotationError(f"annotation {index} keeps a raw <infoK> tag: {fact[:200]!r}{_where(row)}")
        if fact:
            facts.append(fact)
    return facts
