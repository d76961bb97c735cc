"""What every benchmark converter shares: the row schema, :class:`BenchmarkItem`, :class:`BenchmarkSpec`
and the cell readers (a column's text, list, images, precision, choice letter)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa

from perception_verl.data.images import row_images
from perception_verl.data.schema import ROW_SCHEMA, RowError, describe_row

MULTIPLE_CHOICE = "multiple_choice"
FREE_FORM = "free_form"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NO_COLUMN = "-"
"""A column name meaning "this layout has no such column" (only WeMath's ``key`` accepts it)."""

_EXTRA_FIELDS = [
    pa.field("benchmark", pa.string()),
    pa.field("question_type", pa.string()),
    pa.field("answer_type", pa.string()),
    pa.field("choices", pa.list_(pa.string())),
    pa.field("answer_letter", pa.string()),
    pa.field("precision", pa.int64()),
    pa.field("unit", pa.string()),
    pa.field("subsets", pa.list_(pa.string())),
    pa.field("problem_id", pa.string()),
    pa.field("step_key", pa.string()),
]
_BASE_EXTRA = ROW_SCHEMA.field("extra_info").type
BENCHMARK_SCHEMA = ROW_SCHEMA.set(
    ROW_SCHEMA.get_field_index("extra_info"),
    pa.field("extra_info", pa.struct([*_BASE_EXTRA, *_EXTRA_FIELDS]), nullable=False),
)
"""The training row schema with ``extra_info`` widened by the answer and subset fields."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One validated benchmark problem, independent of its hub layout."""

    benchmark: str
    split: str
    index: int
    id: str
    question: str
    answer: str
    question_type: str
    answer_type: str
    choices: tuple[str, ...]
    answer_letter: str | None
    precision: int | None
    unit: str | None
    subsets: tuple[str, ...]
    images: tuple[bytes, ...]
    problem_id: str | None = None
    step_key: str | None = None

    @property
    def where(self) -> str:
        return describe_row(self.split, self.index, self.id)

    @property
    def ground_truth(self) -> str:
        """What the reward compares with: the letter for multiple choice, else the answer text."""
        return self.answer_letter if self.answer_letter is not None else self.answer


Converter = Callable[["BenchmarkSpec", str, int, Mapping[str, Any]], BenchmarkItem]


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives on the hub, which split the paper reports, and its column names."""

    name: str
    hub_id: str
    split: str
    config: str | None
    columns: Mapping[str, str]
    convert: Converter

    def column(self, key: str) -> str:
        return self.columns[key]

    def with_columns(self, overrides: Mapping[str, str]) -> BenchmarkSpec:
        unknown = sorted(set(overrides) - set(self.columns))
        if unknown:
            raise ValueError(f"{self.name}: unknown column key(s) {unknown}; known: {sorted(self.columns)}")
        return BenchmarkSpec(
            self.name, self.hub_id, self.split, self.config, {**self.columns, **overrides}, self.convert
        )


def cell_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def cell(row: Mapping[str, Any], column: str) -> Any:
    """A column's value; ``a.b`` reads field ``b`` of struct column ``a``."""
    node: Any = row
    for part in column.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def cell_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def cell_images(row: Mapping[str, Any], column: str, where: str) -> tuple[bytes, ...]:
    images = row_images(cell(row, column), where, RowError, column)
    if not images:
        raise RowError(f"{where}: missing image in column {column!r}")
    return tuple(image.png for image in images)


def cell_precision(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"{where}: precision {value!r} is not a number") from None
    if number != number:  # NaN: pandas' missing value
        return None
    if number < 0 or number != int(number):
        raise RowError(f"{where}: precision {value!r} is not a whole number of decimal places")
    return int(number)


def choices_block(choices: Sequence[str]) -> str:
    """The choices as the prompt lists them: ``Choices:\\n(A) ...\\n(B) ...``."""
    return "Choices:\n" + "\n".join(f"({LETTERS[i]}) {choice}" for i, choice in enumerate(choices))


def choice_letter(value: str, count: int, where: str) -> str:
    letter = value.strip().strip("()").strip(".").strip().upper()
    allowed = LETTERS[:count] if count else LETTERS
    if len(letter) != 1 or letter not in allowed:
        raise RowError(f"{where}: answer {value!r} is not one of the choice letters")
    return letter


def row_base(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> tuple[str, str]:
    row_id = cell_text(cell(row, spec.column("id")))
    where = describe_row(split, index, row_id or None)
    if not row_id:
        raise RowError(f"{where}: missing id in column {spec.column('id')!r}")
    return row_id, where


class RowReader:
    """One hub row being converted: its id and place (checked), its cells by column key, its item."""

    def __init__(self, spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> None:
        self.spec, self.split, self.index, self.row = spec, split, index, row
        self.id, self.where = row_base(spec, split, index, row)

    def text(self, key: str) -> str:
        return cell_text(cell(self.row, self.spec.column(key)))

    def list(self, key: str) -> list[Any]:
        return cell_list(cell(self.row, self.spec.column(key)))

    def required(self, key: str, problem: str) -> str:
        """The cell's text; :class:`RowError` ``"<where>: <problem>"`` when it is empty."""
        value = self.text(key)
        if not value:
            raise RowError(f"{self.where}: {problem}")
        return value

    @cached_property
    def images(self) -> tuple[bytes, ...]:
        return cell_images(self.row, self.spec.column("image"), self.where)

    def item(
        self,
        question: str,
        answer: str,
        *,
        choices: tuple[str, ...] = (),
        letter: str | None = None,
        subsets: Sequence[str] = (),
        answer_type: str | None = None,
        precision: int | None = None,
        unit: str | None = None,
        problem_id: str | None = None,
        step_key: str | None = None,
    ) -> BenchmarkItem:
        """The :class:`BenchmarkItem` (multiple choice when ``letter`` is set; empty subset tags dropped)."""
        return BenchmarkItem(
            benchmark=self.spec.name,
            split=self.split,
            index=self.index,
            id=self.id if step_key is None else f"{self.id}/{step_key}",
            question=question,
            answer=answer,
            question_type=MULTIPLE_CHOICE if letter else FREE_FORM,
            answer_type=answer_type or ("letter" if letter else "text"),
            choices=choices,
            answer_letter=letter,
            precision=precision,
            unit=unit,
            subsets=tuple(s for s in subsets if not s.endswith(":")),
            images=self.images,
            problem_id=problem_id,
            step_key=step_key,
        )
