"""The MathVista converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    LETTERS,
    BenchmarkItem,
    BenchmarkSpec,
    RowReader,
    cell,
    cell_precision,
    cell_text,
    choices_block,
)
from perception_verl.data.schema import RowError


def convert_mathvista(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVista row: multiple choice answers are choice texts (mapped to their letter)."""
    r = RowReader(spec, split, index, row)
    question = r.required("question", "empty question")
    answer = r.required("answer", "missing answer")
    kind = r.text("question_type")
    choices = tuple(cell_text(c) for c in r.list("choices"))
    letter = None
    if kind == "multi_choice":
        if not choices:
            raise RowError(f"{r.where}: multiple-choice question without choices")
        if answer not in choices:
            raise RowError(f"{r.where}: answer {answer!r} is not among the choices {list(choices)}")
        letter = LETTERS[choices.index(answer)]
        question = f"{question}\n{choices_block(choices)}"
    elif kind != "free_form":
        raise RowError(f"{r.where}: unknown question_type {kind!r} (expected multi_choice or free_form)")
    subsets = [f"task:{r.text('task')}", f"context:{r.text('context')}"]
    subsets += [f"skill:{cell_text(s)}" for s in r.list("skills")]
    return r.item(
        question,
        answer,
        choices=choices,
        letter=letter,
        subsets=subsets,
        answer_type=r.text("answer_type") or "text",
        precision=cell_precision(cell(row, spec.column("precision")), r.where),
        unit=r.text("unit") or None,
    )


COLUMNS = dict(
    id="pid", question="question", image="decoded_image", choices="choices", unit="unit",
    precision="precision", answer="answer", question_type="question_type", answer_type="answer_type",
    task="metadata.task", context="metadata.context", skills="metadata.skills",
)  # fmt: skip
"""The hub layout's column of each field the converter reads."""

SPEC = BenchmarkSpec("mathvista", "AI4Math/MathVista", "testmini", None, COLUMNS, convert_mathvista)
"""Where MathVista lives on the hub, the split the paper reports, its column names."""
