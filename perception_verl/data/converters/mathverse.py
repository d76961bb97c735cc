"""The MathVerse converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    LETTERS,
    BenchmarkItem,
    BenchmarkSpec,
    RowReader,
    choice_letter,
)
from perception_verl.data.schema import RowError

_MATHVERSE_CHOICE = re.compile(r"^\s*\(?([A-H])\)?\s*[:.)]\s*(.*\S)\s*$")


def mathverse_choices(question: str) -> tuple[str, ...]:
    """Choice texts written after ``Choices:`` in a MathVerse question (``A:40°`` lines); () if none."""
    _head, sep, tail = question.partition("Choices:")
    if not sep:
        return ()
    choices: list[str] = []
    for line in tail.splitlines():
        match = _MATHVERSE_CHOICE.match(line)
        if match is None:
            continue
        if match.group(1) != LETTERS[len(choices)]:
            return ()
        choices.append(match.group(2))
    return tuple(choices)


def convert_mathverse(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVerse row: choices are written in the question text; the answer is a letter."""
    r = RowReader(spec, split, index, row)
    question = r.text("question")
    answer = r.required("answer", "missing answer")
    kind = r.text("question_type")
    r.images  # noqa: B018 - read (and checked) before the question, as the error order promises
    version = r.text("problem_version")
    if not question and "vision only" not in version.lower():
        raise RowError(f"{r.where}: empty question")
    choices: tuple[str, ...] = ()
    letter = None
    if kind == "multi-choice":
        choices = mathverse_choices(question)
        letter = choice_letter(answer, len(choices), r.where)
    elif kind != "free-form":
        raise RowError(f"{r.where}: unknown question_type {kind!r} (expected multi-choice or free-form)")
    subsets = [f"version:{version}", f"subject:{r.text('subject')}"]
    question = question or "Answer the question shown in the image."
    return r.item(question, answer, choices=choices, letter=letter, subsets=subsets)


COLUMNS = dict(
    id="sample_index", question="question", image="image", answer="answer", question_type="question_type",
    problem_version="problem_version", subject="metadata.subject",
)  # fmt: skip
"""The hub layout's column of each field the converter reads."""

SPEC = BenchmarkSpec("mathverse", "AI4Math/MathVerse", "testmini", "testmini", COLUMNS, convert_mathverse)
"""Where MathVerse lives on the hub, the split the paper reports, its column names."""
