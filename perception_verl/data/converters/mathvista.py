"""The MathVista converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

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
    cell_list,
    cell_precision,
    cell_text,
    choices_block,
    row_base,
)
from perception_verl.data.schema import RowError


def convert_mathvista(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVista row: multiple choice answers are choice texts (mapped to their letter)."""
    row_id, where = row_base(spec, split, index, row)
    question = cell_text(cell(row, spec.column("question")))
    answer = cell_text(cell(row, spec.column("answer")))
    if not question:
        raise RowError(f"{where}: empty question")
    if not answer:
        raise RowError(f"{where}: missing answer")
    kind = cell_text(cell(row, spec.column("question_type")))
    choices = tuple(cell_text(c) for c in cell_list(cell(row, spec.column("choices"))))
    letter = None
    if kind == "multi_choice":
        if not choices:
            raise RowError(f"{where}: multiple-choice question without choices")
        if answer not in choices:
            raise RowError(f"{where}: answer {answer!r} is not among the choices {list(choices)}")
        letter = LETTERS[choices.index(answer)]
        question = f"{question}\n{choices_block(choices)}"
    elif kind != "free_form":
        raise RowError(f"{where}: unknown question_type {kind!r} (expected multi_choice or free_form)")
    subsets = [
        f"task:{cell_text(cell(row, spec.column('task')))}",
        f"context:{cell_text(cell(row, spec.column('context')))}",
    ]
    subsets += [f"skill:{cell_text(s)}" for s in cell_list(cell(row, spec.column("skills")))]
    unit = cell_text(cell(row, spec.column("unit"))) or None
    return BenchmarkItem(
        benchmark=spec.name,
        split=split,
        index=index,
        id=row_id,
        question=question,
        answer=answer,
        question_type=MULTIPLE_CHOICE if letter else FREE_FORM,
        answer_type=cell_text(cell(row, spec.column("answer_type"))) or "text",
        choices=choices,
        answer_letter=letter,
        precision=cell_precision(cell(row, spec.column("precision")), where),
        unit=unit,
        subsets=tuple(s for s in subsets if not s.endswith(":")),
        images=cell_images(row, spec.column("image"), where),
    )


SPEC = BenchmarkSpec(
    "mathvista",
    "AI4Math/MathVista",
    "testmini",
    None,
    {
        "id": "pid",
        "question": "question",
        "image": "decoded_image",
        "choices": "choices",
        "unit": "unit",
        "precision": "precision",
        "answer": "answer",
        "question_type": "question_type",
        "answer_type": "answer_type",
        "task": "metadata.task",
        "context": "metadata.context",
        "skills": "metadata.skills",
    },
    convert_mathvista,
)
"""Where MathVista lives on the hub, the split the paper reports, its column names."""
