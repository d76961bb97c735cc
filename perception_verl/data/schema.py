"""The verl RL row this project writes: columns, prompt text and the parquet schema.

One row per problem, in the layout verl's ``RLHFDataset`` reads:

- ``data_source``: ``"hiyouga/geometry3k"`` (the name verl's own Geometry3K scorer keys on);
- ``prompt``: chat messages; the single user message is the problem text, with exactly one
  ``<image>`` placeholder per image, followed by the think/answer/boxed instruction;
- ``images``: ``[{"bytes": <PNG>}, ...]`` in placeholder order;
- ``ability``: ``"math"``;
- ``reward_model``: ``{"style": "rule", "ground_truth": answer, "annotations": [fact, ...]}``, where
  ``answer`` is the one text form of the source answer
  (:func:`~perception_verl.rewards.ground_truth.ground_truth_text`; anything else is a :class:`RowError`);
- ``extra_info``: ``{"split", "index", "id", "problem", "answer", "num_annotations"}``, where
  ``split``/``index`` locate the row in the source dataset and ``id`` is its Geometry3K id as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from perception_verl.errors import PerceptionVerlError
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text

DATA_SOURCE = "hiyouga/geometry3k"
ABILITY = "math"
IMAGE_PLACEHOLDER = "<image>"
_OTHER_PLACEHOLDERS = ("<video>", "<audio>")

DEFAULT_INSTRUCTION = (
    "Reason about the problem step by step first, and write that reasoning inside <think> </think> "
    "tags. Then give your answer inside <answer> </answer> tags, with the final answer written in "
    "\\boxed{} inside the answer tags."
)

ROW_SCHEMA = pa.schema(
    [
        pa.field("data_source", pa.string(), nullable=False),
        pa.field(
            "prompt",
            pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])),
            nullable=False,
        ),
        pa.field("images", pa.list_(pa.struct([pa.field("bytes", pa.binary())])), nullable=False),
        pa.field("ability", pa.string(), nullable=False),
        pa.field(
            "reward_model",
            pa.struct(
                [
                    pa.field("style", pa.string()),
                    pa.field("ground_truth", pa.string()),
                    pa.field("annotations", pa.list_(pa.string())),
                ]
            ),
            nullable=False,
        ),
        pa.field(
            "extra_info",
            pa.struct(
                [
                    pa.field("split", pa.string()),
                    pa.field("index", pa.int64()),
                    pa.field("id", pa.string()),
                    pa.field("problem", pa.string()),
                    pa.field("answer", pa.string()),
                    pa.field("num_annotations", pa.int64()),
                ]
            ),
            nullable=False,
        ),
    ]
)


class RowError(PerceptionVerlError, ValueError):
    """A source row that cannot be converted; the message names its split, index and id."""


def describe_row(split: str, index: int, row_id: str | None) -> str:
    """Human-readable row location used in every error message: ``split 'train' index 3 (id 17)``."""
    where = f"split {split!r} index {index}"
    return f"{where} (id {row_id})" if row_id is not None else where


def check_instruction(instruction: str) -> str:
    """Return the stripped instruction, refusing multimodal placeholders (verl would expand them)."""
    for token in (IMAGE_PLACEHOLDER, *_OTHER_PLACEHOLDERS):
        if token in instruction:
            raise ValueError(f"the instruction must not contain {token!r}")
    return instruction.strip()


def build_user_text(problem: str, num_images: int, instruction: str, *, where: str) -> str:
    """Problem text with exactly one ``<image>`` per image, then the instruction (space-separated).

    A problem without placeholders gets them prepended; any other count mismatch is an error,
    since the placeholder positions would be guessed.
    """
    for token in _OTHER_PLACEHOLDERS:
        if token in problem:
            raise RowError(f"{where}: problem text contains {token!r}, which verl would treat as media")
    found = problem.count(IMAGE_PLACEHOLDER)
    if found == 0:
        problem = IMAGE_PLACEHOLDER * num_images + problem
    elif found != num_images:
        raise RowError(
            f"{where}: problem has {found} {IMAGE_PLACEHOLDER} placeholders but {num_images} images"
        )
    return f"{problem} {instruction}" if instruction else problem


def strip_placeholders(problem: str) -> str:
    """The problem text without ``<image>`` placeholders, for ``extra_info`` and matching."""
    return problem.replace(IMAGE_PLACEHOLDER, " ").strip()


@dataclass(frozen=True)
class ConvertedProblem:
    """A validated source row: text, answer and PNG images, ready to become a verl row."""

    split: str
    index: int
    id: str | None
    problem: str
    answer: str
    images: tuple[bytes, ...]
    image_hashes: tuple[str, ...]

    @property
    def where(self) -> str:
        return describe_row(self.split, self.index, self.id)


def build_row(problem: ConvertedProblem, annotations: Sequence[str], instruction: str) -> dict[str, Any]:
    """The verl row for ``problem`` (pure; ``instruction`` already checked).

    Raises :class:`RowError` naming the row when its answer has no single text form (missing, empty,
    NaN, a placeholder such as ``"None"``): such a row would otherwise score silently.
    """
    try:
        answer = ground_truth_text(problem.answer)
    except GroundTruthError as error:
        kind = "missing" if error.missing else "unusable"
        raise RowError(f"{problem.where}: {kind} answer: {error}") from None
    user_text = build_user_text(problem.problem, len(problem.images), instruction, where=problem.where)
    facts = list(annotations)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": user_text}],
        "images": [{"bytes": data} for data in problem.images],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": answer, "annotations": facts},
        "extra_info": {
            "split": problem.split,
            "index": problem.index,
            "id": problem.id,
            "problem": strip_placeholders(problem.problem),
            "answer": answer,
            "num_annotations": len(facts),
        },
    }
