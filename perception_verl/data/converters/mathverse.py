"""The MathVerse converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    FREE_FORM,
    LETTERS,
    MULTIPLE_CHOICE,
    BenchmarkItem,
    BenchmarkSpec,
    cell,
    cell_images,
    cell_text,
    choice_letter,
    row_base,
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
    row_id, where = row_base(spec, split, index, row)
    question = cell_text(cell(row, spec.column("question")))
    answer = cell_text(cell(row, spec.column("answer")))
    if not answer:
        raise RowError(f"{where}: missing answer")
    kind = cell_text(cell(row, spec.column("question_type")))
    images = cell_images(row, spec.column("image"), where)
    version = cell_text(cell(row, spec.column("problem_version")))
    if not question and "vision only" not in version.lower():
        raise RowError(f"{where}: empty question")
    choices: tuple[str, ...] = ()
    letter = None
    if kind == "multi-choice":
        choices = mathverse_choices(question)
        letter = choice_letter(answer, len(choices), where)
    elif kind != "free-form":
        raise RowError(f"{where}: unknown question_type {kind!r} (expected multi-choice or free-form)")
    subsets = [f"version:{version}", f"subject:{cell_text(cell(row, spec.column('subject')))}"]
    return BenchmarkItem(
        benchmark=spec.name,
        split=split,
        index=index,
        id=row_id,
        question=question or "Answer the question shown in the image.",
        answer=answer,
        question_type=MULTIPLE_CHOICE if letter else FREE_FORM,
        answer_type="letter" if letter else "text",
        choices=choices,
        answer_letter=letter,
        precision=None,
        unit=None,
        subsets=tuple(s for s in subsets if not s.endswith(":")),
        images=images,
    )


SPEC = BenchmarkSpec(
    "mathverse",
    "AI4Math/MathVerse",
    "testmini",
    "testmini",
    {
        "id": "sample_index",
        "question": "question",
        "image": "image",
        "answer": "answer",
        "question_type": "question_type",
        "problem_version": "problem_version",
        "subject": "metadata.subject",
    },
    convert_mathverse,
)
"""Where MathVerse lives on the hub, the split the paper reports, its column names."""
