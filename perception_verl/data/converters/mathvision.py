"""The MathVision converter: its hub layout into a :class:`BenchmarkItem`, and its :data:`SPEC`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from perception_verl.data.converters.item import (
    BenchmarkItem,
    BenchmarkSpec,
    RowReader,
    cell_text,
    choice_letter,
    choices_block,
)
from perception_verl.data.schema import RowError

_IMAGE_MARK = re.compile(r"<image\d*>")


def convert_mathvision(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVision row: options (if any) become lettered choices; ``<imageN>`` marks are dropped."""
    r = RowReader(spec, split, index, row)
    question = _IMAGE_MARK.sub(" ", r.text("question")).strip()
    if not question:
        raise RowError(f"{r.where}: empty question")
    answer = r.required("answer", "missing answer")
    choices = tuple(cell_text(c) for c in r.list("options") if cell_text(c))
    letter = None
    if choices:
        letter = choice_letter(answer, len(choices), r.where)
        question = f"{question}\n{choices_block(choices)}"
    subsets = [f"subject:{r.text('subject')}", f"level:{r.text('level')}"]
    return r.item(question, answer, choices=choices, letter=letter, subsets=subsets)


COLUMNS = dict(
    id="id", question="question", options="options", image="decoded_image", answer="answer", level="level",
    subject="subject",
)  # fmt: skip
"""The hub layout's column of each field the converter reads."""

SPEC = BenchmarkSpec("mathvision", "MathLLMs/MathVision", "test", None, COLUMNS, convert_mathvision)
"""Where MathVision lives on the hub, the split the paper reports, its column names."""
