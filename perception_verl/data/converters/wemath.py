"""The We-Math converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    LETTERS,
    NO_COLUMN,
    BenchmarkItem,
    BenchmarkSpec,
    RowReader,
    choice_letter,
    choices_block,
)
from perception_verl.data.schema import RowError
from perception_verl.data.wemath_keys import WeMathError, parse_key

_WEMATH_SEPARATOR = "[.:：．]"


def _wemath_mark(letter: str) -> re.Pattern[str]:
    # The letter after a start, ';' or space, then its separator, not followed by an empty choice:
    # testmini has options like "A. 45° B. 60° ;C. 120°", "B．②" and "... to get Shape ;C.; C. ...".
    return re.compile(rf"(?<![^;\s]){letter}\s*{_WEMATH_SEPARATOR}(?!\s*(?:;|$))")


_WEMATH_MARKS = tuple(_wemath_mark(letter) for letter in LETTERS[:8])


def wemath_choices(option: str) -> tuple[str, ...]:
    """Choice texts of a We-Math ``option`` string (``"A. 6; B. 8; C. 10"``); () if it does not parse.

    Marks are found in letter order (A, then B after it, ...); a choice runs to the next mark.
    """
    marks: list[re.Match[str]] = []
    position = 0
    for pattern in _WEMATH_MARKS:
        match = pattern.search(option, position)
        if match is None:
            break
        marks.append(match)
        position = match.end()
    if not marks:
        return ()
    ends = [m.start() for m in marks[1:]] + [len(option)]
    choices = tuple(
        option[m.end() : end].rstrip("; \t\n").strip() for m, end in zip(marks, ends, strict=True)
    )
    return choices if all(choices) else ()


def _wemath_key(r: RowReader) -> str | None:
    spec, where = r.spec, r.where
    column = spec.column("key")
    if column == NO_COLUMN:
        return None
    key = r.text("key")
    if not key:
        raise RowError(
            f"{where}: missing key in column {column!r} (WeMath's four-dimensional metric groups rows "
            f"by it); name the column with --column {spec.name}.key=COLUMN, or build without it "
            f"with --column {spec.name}.key={NO_COLUMN}"
        )
    try:
        parse_key(key)
    except WeMathError as error:
        raise RowError(f"{where}: {error} (column {column!r})") from None
    return key


def convert_wemath(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One We-Math row: multiple choice with the options in one string and a letter answer.

    The id is ``<ID>/<key>`` (the rows of one composite problem share ``ID``), or ``ID`` alone when
    the key column is :data:`NO_COLUMN`.
    """
    r = RowReader(spec, split, index, row)
    step_key = _wemath_key(r)
    question = r.text("question")
    answer = r.text("answer")
    option = r.text("option")
    r.required("question", "empty question")
    r.required("answer", "missing answer")
    choices = wemath_choices(option)
    if not choices:
        raise RowError(f"{r.where}: options {option!r} do not parse as 'A. ...; B. ...'")
    return r.item(
        f"{question}\n{choices_block(choices)}",
        answer,
        choices=choices,
        letter=choice_letter(answer, len(choices), r.where),
        subsets=[f"concept:{r.text('concept')}"],
        problem_id=r.id if step_key is not None else None,
        step_key=step_key,
    )


COLUMNS = dict(
    id="ID", key="key", question="question", option="option", answer="answer", image="image_path",
    concept="knowledge concept",
)  # fmt: skip
"""The hub layout's column of each field the converter reads."""

SPEC = BenchmarkSpec("wemath", "We-Math/We-Math", "testmini", None, COLUMNS, convert_wemath)
"""Where We-Math lives on the hub, the split the paper reports, its column names."""
