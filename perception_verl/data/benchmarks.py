"""Evaluation benchmarks as verl parquet: MathVista, MathVerse, MathVision and WeMath.

Each benchmark's published hub layout is converted into the training row shape
(:mod:`perception_verl.data.schema`: ``data_source``, ``prompt``, ``images``, ``ability``,
``reward_model``, ``extra_info``), with :data:`BENCHMARK_SCHEMA`'s wider ``extra_info`` carrying
what scoring needs: the benchmark name, the source id (the join key of the scorer), the question
type (``multiple_choice`` / ``free_form``), the answer type, the choices and the correct letter,
the precision (decimal places) and the unit, and subset tags (``task:...``, ``skill:...``,
``version:...``) for selecting a subset such as MathVista's geometry problems.

Columns relied on (from the dataset cards; each can be renamed with :attr:`BenchmarkSpec.columns`):

- ``AI4Math/MathVista`` split ``testmini``: ``pid``, ``question``, ``decoded_image``, ``choices``,
  ``unit``, ``precision``, ``answer``, ``question_type`` (``multi_choice``/``free_form``),
  ``answer_type``, ``metadata`` (``task``, ``context``, ``skills``, ``category``);
- ``AI4Math/MathVerse`` config/split ``testmini``: ``sample_index``, ``question`` (choices written in
  the text), ``image``, ``answer`` (a letter for multiple choice), ``question_type``
  (``multi-choice``/``free-form``), ``problem_version``, ``metadata`` (``subject``, ``subfield``);
- ``MathLLMs/MathVision`` split ``test``: ``id``, ``question`` (``<image1>`` marks), ``options``,
  ``decoded_image``, ``answer`` (a letter when there are options), ``level``, ``subject``;
- ``We-Math/We-Math`` split ``testmini``: ``ID`` (the composite problem, shared by its rows), ``key``
  (``2steps_1``, ``2steps_multi``, ...: which part of the problem the row is), ``question``,
  ``option`` (one string, ``"A. ...; B. ..."``), ``answer`` (a letter), ``image_path`` (an image
  feature), ``knowledge concept``. Its card lists no features, so these names come from a derived
  card and We-Math's own ``testmini.json`` (same columns); every one is configurable. A row's id is
  ``<ID>/<key>`` and ``extra_info`` carries ``problem_id`` and ``step_key`` for WeMath's
  four-dimensional metric (:mod:`perception_verl.evaluation.wemath`); a row without a valid key is
  an error, unless the key column is set to ``-`` (``--column wemath.key=-``): then the id is ``ID``
  alone and the rows cannot be scored with that metric.

Same standards as the Geometry3K builder: rows keep source order, bad rows raise
:class:`~perception_verl.data.schema.RowError` naming split, index and id, duplicate ids are
refused, and every output is written atomically with byte-identical results for the same input.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.data.images import ImageDataError, MissingImageError, decode_images
from perception_verl.data.loading import SourceError, load_split_rows, read_file_rows
from perception_verl.data.schema import (
    ABILITY,
    DEFAULT_INSTRUCTION,
    IMAGE_PLACEHOLDER,
    ROW_SCHEMA,
    RowError,
    build_user_text,
    check_instruction,
    describe_row,
    strip_placeholders,
)
from perception_verl.data.writer import write_outputs_atomically
from perception_verl.evaluation.wemath import WeMathError, parse_key

logger = logging.getLogger(__name__)

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


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _get(row: Mapping[str, Any], column: str) -> Any:
    """A column's value; ``a.b`` reads field ``b`` of struct column ``a``."""
    node: Any = row
    for part in column.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _images(row: Mapping[str, Any], column: str, where: str) -> tuple[bytes, ...]:
    try:
        images = decode_images(_get(row, column))
    except MissingImageError as error:
        raise RowError(f"{where}: missing image in column {column!r}: {error}") from None
    except ImageDataError as error:
        raise RowError(f"{where}: unreadable image in column {column!r}: {error}") from None
    if not images:
        raise RowError(f"{where}: missing image in column {column!r}")
    return tuple(image.png for image in images)


def _precision(value: Any, where: str) -> int | None:
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


def _letter(value: str, count: int, where: str) -> str:
    letter = value.strip().strip("()").strip(".").strip().upper()
    allowed = LETTERS[:count] if count else LETTERS
    if len(letter) != 1 or letter not in allowed:
        raise RowError(f"{where}: answer {value!r} is not one of the choice letters")
    return letter


def _base(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> tuple[str, str]:
    row_id = _text(_get(row, spec.column("id")))
    where = describe_row(split, index, row_id or None)
    if not row_id:
        raise RowError(f"{where}: missing id in column {spec.column('id')!r}")
    return row_id, where


def convert_mathvista(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVista row: multiple choice answers are choice texts (mapped to their letter)."""
    row_id, where = _base(spec, split, index, row)
    question = _text(_get(row, spec.column("question")))
    answer = _text(_get(row, spec.column("answer")))
    if not question:
        raise RowError(f"{where}: empty question")
    if not answer:
        raise RowError(f"{where}: missing answer")
    kind = _text(_get(row, spec.column("question_type")))
    choices = tuple(_text(c) for c in _as_list(_get(row, spec.column("choices"))))
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
        f"task:{_text(_get(row, spec.column('task')))}",
        f"context:{_text(_get(row, spec.column('context')))}",
    ]
    subsets += [f"skill:{_text(s)}" for s in _as_list(_get(row, spec.column("skills")))]
    unit = _text(_get(row, spec.column("unit"))) or None
    return BenchmarkItem(
        benchmark=spec.name,
        split=split,
        index=index,
        id=row_id,
        question=question,
        answer=answer,
        question_type=MULTIPLE_CHOICE if letter else FREE_FORM,
        answer_type=_text(_get(row, spec.column("answer_type"))) or "text",
        choices=choices,
        answer_letter=letter,
        precision=_precision(_get(row, spec.column("precision")), where),
        unit=unit,
        subsets=tuple(s for s in subsets if not s.endswith(":")),
        images=_images(row, spec.column("image"), where),
    )


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
    row_id, where = _base(spec, split, index, row)
    question = _text(_get(row, spec.column("question")))
    answer = _text(_get(row, spec.column("answer")))
    if not answer:
        raise RowError(f"{where}: missing answer")
    kind = _text(_get(row, spec.column("question_type")))
    images = _images(row, spec.column("image"), where)
    version = _text(_get(row, spec.column("problem_version")))
    if not question and "vision only" not in version.lower():
        raise RowError(f"{where}: empty question")
    choices: tuple[str, ...] = ()
    letter = None
    if kind == "multi-choice":
        choices = mathverse_choices(question)
        letter = _letter(answer, len(choices), where)
    elif kind != "free-form":
        raise RowError(f"{where}: unknown question_type {kind!r} (expected multi-choice or free-form)")
    subsets = [f"version:{version}", f"subject:{_text(_get(row, spec.column('subject')))}"]
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


_IMAGE_MARK = re.compile(r"<image\d*>")


def convert_mathvision(spec: BenchmarkSpec, split: str, index: int, row: Mapping[str, Any]) -> BenchmarkItem:
    """One MathVision row: options (if any) become lettered choices; ``<imageN>`` marks are dropped."""
    row_id, where = _base(spec, split, index, row)
    question = _IMAGE_MARK.sub(" ", _text(_get(row, spec.column("question")))).strip()
    answer = _text(_get(row, spec.column("answer")))
    if not question:
        raise RowError(f"{where}: empty question")
    if not answer:
        raise RowError(f"{where}: missing answer")
    choices = tuple(_text(c) for c in _as_list(_get(row, spec.column("options"))) if _text(c))
    letter = None
    if choices:
        letter = _letter(answer, len(choices), where)
        question = f"{question}\n{choices_block(choices)}"
    level = _text(_get(row, spec.column("level")))
    subsets = [f"subject:{_text(_get(row, spec.column('subject')))}", f"level:{level}"]
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
        images=_images(row, spec.column("image"), where),
    )


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


def _wemath_key(spec: BenchmarkSpec, row: Mapping[str, Any], where: str) -> str | None:
    column = spec.column("key")
    if column == NO_COLUMN:
        return None
    key = _text(_get(row, column))
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
    problem, where = _base(spec, split, index, row)
    step_key = _wemath_key(spec, row, where)
    row_id = problem if step_key is None else f"{problem}/{step_key}"
    question = _text(_get(row, spec.column("question")))
    answer = _text(_get(row, spec.column("answer")))
    option = _text(_get(row, spec.column("option")))
    if not question:
        raise RowError(f"{where}: empty question")
    if not answer:
        raise RowError(f"{where}: missing answer")
    choices = wemath_choices(option)
    if not choices:
        raise RowError(f"{where}: options {option!r} do not parse as 'A. ...; B. ...'")
    letter = _letter(answer, len(choices), where)
    concept = _text(_get(row, spec.column("concept")))
    return BenchmarkItem(
        benchmark=spec.name,
        split=split,
        index=index,
        id=row_id,
        question=f"{question}\n{choices_block(choices)}",
        answer=answer,
        question_type=MULTIPLE_CHOICE,
        answer_type="letter",
        choices=choices,
        answer_letter=letter,
        precision=None,
        unit=None,
        subsets=(f"concept:{concept}",) if concept else (),
        images=_images(row, spec.column("image"), where),
        problem_id=problem if step_key is not None else None,
        step_key=step_key,
    )


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "mathvista": BenchmarkSpec(
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
    ),
    "mathverse": BenchmarkSpec(
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
    ),
    "mathvision": BenchmarkSpec(
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
    ),
    "wemath": BenchmarkSpec(
        "wemath",
        "We-Math/We-Math",
        "testmini",
        None,
        {
            "id": "ID",
            "key": "key",
            "question": "question",
            "option": "option",
            "answer": "answer",
            "image": "image_path",
            "concept": "knowledge concept",
        },
        convert_wemath,
    ),
}
"""The four benchmarks of the paper's table, with the split it reports."""

GEOMETRY_SUBSET = "task:geometry problem solving"
"""MathVista's geometry problems (``metadata.task``), the pool of the paper's McNemar study."""


def build_row(item: BenchmarkItem, annotations: Sequence[str], instruction: str) -> dict[str, Any]:
    """The verl row of ``item`` (pure)."""
    problem = IMAGE_PLACEHOLDER * len(item.images) + strip_placeholders(item.question)
    facts = list(annotations)
    return {
        "data_source": BENCHMARKS[item.benchmark].hub_id,
        "prompt": [
            {
                "role": "user",
                "content": build_user_text(problem, len(item.images), instruction, where=item.where),
            }
        ],
        "images": [{"bytes": data} for data in item.images],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": item.ground_truth, "annotations": facts},
        "extra_info": {
            "split": item.split,
            "index": item.index,
            "id": item.id,
            "problem": strip_placeholders(item.question),
            "answer": item.answer,
            "num_annotations": len(facts),
            "benchmark": item.benchmark,
            "question_type": item.question_type,
            "answer_type": item.answer_type,
            "choices": list(item.choices),
            "answer_letter": item.answer_letter,
            "precision": item.precision,
            "unit": item.unit,
            "subsets": list(item.subsets),
            "problem_id": item.problem_id,
            "step_key": item.step_key,
        },
    }


@dataclass(frozen=True)
class BenchmarkBuild:
    """One benchmark to convert and where to write it."""

    name: str
    out: Path
    source: str | None = None
    split: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    subsets: tuple[str, ...] = ()
    sample: int | None = None
    seed: int = 0
    annotations: str | None = None


@dataclass(frozen=True)
class BuildSummary:
    """Counts of one written benchmark file."""

    name: str
    path: Path
    rows_in: int
    rows_out: int
    multiple_choice: int
    annotated: int


def _load(
    spec: BenchmarkSpec, source: str | None, split: str, exclude: Sequence[Path]
) -> list[dict[str, Any]]:
    if source is not None and Path(source).exists():
        return load_split_rows(source, [split], exclude=exclude)[split]
    import datasets

    name = source or spec.hub_id
    logger.info("loading %s (config %s, split %s) from the Hugging Face hub", name, spec.config, split)
    try:
        loaded = datasets.load_dataset(name, spec.config, split=split)
    except Exception as error:
        raise SourceError(
            f"{name!r} is neither a local path nor a loadable hub dataset ({type(error).__name__}: {error})"
        ) from None
    return [row for table in loaded.with_format("arrow").iter(batch_size=256) for row in table.to_pylist()]


def read_annotation_map(path: str) -> dict[str, list[str]]:
    """``{id: [fact, ...]}`` from a jsonl/parquet file of ``{"id", "annotations"}`` rows."""
    mapping: dict[str, list[str]] = {}
    for number, row in enumerate(read_file_rows(Path(path)), start=1):
        row_id = _text(row.get("id"))
        if not row_id:
            raise SourceError(f"{path}: row {number} has no 'id'")
        if row_id in mapping:
            raise SourceError(f"{path}: row {number} repeats id {row_id!r}")
        try:
            mapping[row_id] = parse_annotations(row.get("annotations"), row=row_id)
        except AnnotationError as error:
            raise SourceError(f"{path}: row {number}: {error}") from None
    return mapping


def select(
    items: Sequence[BenchmarkItem], subsets: Sequence[str], sample: int | None, seed: int
) -> list[BenchmarkItem]:
    """Items carrying every tag in ``subsets``, then (optionally) ``sample`` of them, in source order.

    The sample is drawn with ``random.Random(seed)`` over the selected positions, so the same
    inputs always give the same problems.
    """
    chosen = [item for item in items if all(tag in item.subsets for tag in subsets)]
    if sample is not None:
        if sample < 1:
            raise ValueError(f"sample must be at least 1, got {sample}")
        if sample > len(chosen):
            raise ValueError(f"sample {sample} is larger than the {len(chosen)} selected problems")
        keep = set(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [item for position, item in enumerate(chosen) if position in keep]
    return chosen


def convert_rows(
    spec: BenchmarkSpec, split: str, rows: Sequence[Mapping[str, Any]], *, progress: bool
) -> list[BenchmarkItem]:
    """Convert a split's rows in order, refusing duplicate ids."""
    items: list[BenchmarkItem] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(tqdm(rows, desc=f"{spec.name} {split}", unit="row", disable=not progress)):
        item = spec.convert(spec, split, index, row)
        if item.id in seen:
            raise RowError(
                f"{item.where}: duplicate id {item.id!r} (first at index {seen[item.id]}); "
                f"choose a unique id column with --column {spec.name}.id=COLUMN"
            )
        seen[item.id] = index
        items.append(item)
    return items


def build_benchmarks(
    builds: Sequence[BenchmarkBuild], *, instruction: str = DEFAULT_INSTRUCTION, progress: bool = True
) -> list[BuildSummary]:
    """Convert every requested benchmark and write all outputs together, atomically."""
    instruction = check_instruction(instruction)
    outputs = [Path(b.out) for b in builds]
    staged: dict[Path, list[dict[str, Any]]] = {}
    summaries: list[BuildSummary] = []
    for build in builds:
        if build.name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {build.name!r}; choose from {sorted(BENCHMARKS)}")
        spec = BENCHMARKS[build.name].with_columns(build.columns)
        split = build.split or spec.split
        raw = _load(spec, build.source, split, outputs)
        items = convert_rows(spec, split, raw, progress=progress)
        del raw
        chosen = select(items, build.subsets, build.sample, build.seed)
        if not chosen:
            raise ValueError(f"{build.name}: no problem carries every subset tag {list(build.subsets)}")
        facts = read_annotation_map(build.annotations) if build.annotations else {}
        unknown = sorted(set(facts) - {item.id for item in items})
        if unknown:
            raise ValueError(
                f"{build.annotations}: {len(unknown)} annotation id(s) not in {build.name}: {unknown[:5]}"
            )
        rows = [build_row(item, facts.get(item.id, ()), instruction) for item in chosen]
        staged[Path(build.out)] = rows
        summaries.append(
            BuildSummary(
                name=build.name,
                path=Path(build.out),
                rows_in=len(items),
                rows_out=len(rows),
                multiple_choice=sum(1 for item in chosen if item.question_type == MULTIPLE_CHOICE),
                annotated=sum(1 for row in rows if row["extra_info"]["num_annotations"]),
            )
        )
    write_outputs_atomically(staged, BENCHMARK_SCHEMA)
    return summaries


def format_summaries(summaries: Sequence[BuildSummary]) -> str:
    """The closing summary: one line per written benchmark."""
    header = ("benchmark", "rows in", "rows out", "multiple choice", "annotated", "path")
    lines = [header] + [
        (s.name, str(s.rows_in), str(s.rows_out), str(s.multiple_choice), str(s.annotated), str(s.path))
        for s in summaries
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text) + "\n"
