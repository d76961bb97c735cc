"""The MathVision converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    FREE_FORM,
    MULTIPLE_CHOICE,
    BenchmarkItem,
    BenchmarkSpec,
    cell,
    cell_images,
    cell_list,
    cell_text,
    choice_letter,
    choices_block,
    row_base,
)
from perception_verl.data.schema import RowError

_IMAGE_MARK = re.compile(r"<image\d*>")


def convert_mathvision(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVision row: options (if any) become lettered choices; ``<imageN>`` marks are dropped."""
    row_id, where = row_base(spec, split, index, row)
    question = _IMAGE_MARK.sub(" ", cell_text(cell(row, spec.column("question")))).strip()
    answer = cell_text(cell(row, spec.column("answer")))
    if not question:
        raise RowError(f"{where}: empty question")
    if not answer:
        raise RowError(f"{where}: missing answer")
    choices = tuple(cell_text(c) for c in cell_list(cell(row, spec.column("options"))) if cell_text(c))
    letter = None
    if choices:
        letter = choice_letter(answer, len(choices), where)
        question = f"{question}\n{choices_block(choices)}"
    level = cell_text(cell(row, spec.column("level")))
    subsets = [f"subject:{cell_text(cell(row, spec.column('subject')))}", f"level:{level}"]
    return BenchmarkItem(
        benchmark=spec.name,
        split=split,
        index=index,
        id=row_id,
        question=question,
        answer=answer,
        question_type=MULTIPLE_CHOICE if letter else FREE_FORM,
        answer_type="letter" if letter else "text",
        choices=choices,
        answer_letter=letter,
        precision=None,
        unit=None,
        subsets=tuple(s for s in subsets if not s.endswith(":")),
        images=cell_images(row, spec.column("image"), where),
    )


SPEC = BenchmarkSpec(
    "mathvision",
    "MathLLMs/MathVision",
    "test",
    None,
    {
        "id": "id",
        "question": "question",
        "options": "options",
        "image": "decoded_image",
        "answer": "answer",
        "level": "level",
        "subject": "subject",
    },
    convert_mathvision,
)
"""Where MathVision lives on the hub, the split the paper reports, its column names."""
