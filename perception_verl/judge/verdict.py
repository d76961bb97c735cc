"""Strict parser for the judge's answer ``<info1>1</info1> <info2>0</info2> ...``.

Accepted: exactly the ASCII tags ``<infoK>`` and ``</infoK>`` (lower case, no space inside the
brackets, ASCII digits), each value ``0`` or ``1`` with optional ASCII whitespace around it, tags in
any order, and text outside the tags (a short preamble such as "Here are my verdicts:"). Anything
else is not a tag: upper case (``<INFO1>``), spaced (``< info1 >``), look-alike letters (dotless
``ı``, Cyrillic ``і``), full-width forms, other scripts' digits (``info١``). A case-insensitive or
Unicode-aware match would accept such forgeries (Python's ``re.IGNORECASE`` equates ``ı`` and ``İ``
with ``i``, and ``\\d`` matches any script's digits). Errors are a :class:`VerdictError` whose
``kind`` says what went wrong, checked in this order:

- ``missing_tags``: no complete ``<infoK>...</infoK>`` pair at all;
- ``wrong_count``: a tag (opening, closing or paired) with an index outside ``1..n``, or fewer
  pairs than ``n`` (some fact has no verdict);
- ``duplicate_tag``: an index answered more than once;
- ``non_binary``: a value that is not exactly ``0`` or ``1``.
"""

from __future__ import annotations

import re

from perception_verl.errors import PerceptionVerlError

VERDICT_ERROR_KINDS = ("missing_tags", "wrong_count", "non_binary", "duplicate_tag")

_PAIR = re.compile(r"<info([0-9]+)>(.*?)</info([0-9]+)>", re.DOTALL | re.ASCII)
_ANY_TAG = re.compile(r"</?info([0-9]+)>", re.ASCII)
_ASCII_SPACE = " \t\r\n"


class VerdictError(PerceptionVerlError, ValueError):
    """The judge's answer is not one 0/1 tag per fact; ``kind`` is one of ``VERDICT_ERROR_KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in VERDICT_ERROR_KINDS:
            raise ValueError(f"unknown verdict error kind {kind!r}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _preview(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_verdicts(text: str, n: int) -> tuple[int, ...]:
    """Return the ``n`` verdicts (0/1, fact order) in ``text`` or raise :class:`VerdictError`."""
    if n < 1:
        raise ValueError(f"parse_verdicts needs n >= 1, got {n}")
    pairs = _PAIR.findall(text)
    if not pairs:
        raise VerdictError("missing_tags", f"no <infoK>...</infoK> tags in {_preview(text)}")
    for index_text in _ANY_TAG.findall(text):
        index = int(index_text)
        if not 1 <= index <= n:
            raise VerdictError("wrong_count", f"tag info{index} is outside info1..info{n}")
    values: dict[int, str] = {}
    for open_index, value, close_index in pairs:
        index = int(open_index)
        if int(close_index) != index:
            raise VerdictError("wrong_count", f"<info{index}> is closed by </info{int(close_index)}>")
        if index in values:
            raise VerdictError("duplicate_tag", f"info{index} is answered more than once")
        values[index] = value.strip(_ASCII_SPACE)
    if len(values) != n:
        missing = [k for k in range(1, n + 1) if k not in values]
        raise VerdictError("wrong_count", f"got {len(values)} of {n} verdicts; missing info{missing}")
    verdicts: list[int] = []
    for index in range(1, n + 1):
        value = values[index]
        if value not in ("0", "1"):
            raise VerdictError("non_binary", f"info{index} is {_preview(value, 20)}, not 0 or 1")
        verdicts.append(int(value))
    return tuple(verdicts)
