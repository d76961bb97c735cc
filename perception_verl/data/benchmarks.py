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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.data.converters import mathverse, mathvision, mathvista, wemath
from perception_verl.data.converters.item import (
    BENCHMARK_SCHEMA,
    MULTIPLE_CHOICE,
    BenchmarkItem,
    BenchmarkSpec,
    cell_text,
)
from perception_verl.data.converters.mathverse import mathverse_choices
from perception_verl.data.converters.wemath import wemath_choices
from perception_verl.data.loading import SourceError, load_split_rows, read_file_rows
from perception_verl.data.schema import (
    ABILITY,
    DEFAULT_INSTRUCTION,
    IMAGE_PLACEHOLDER,
    RowError,
    build_user_text,
    check_instruction,
    strip_placeholders,
)
from perception_verl.data.writer import write_outputs_atomically

logger = logging.getLogger(__name__)

BENCHMARKS: dict[str, BenchmarkSpec] = {
    module.SPEC.name: module.SPEC for module in (mathvista, mathverse, mathvision, wemath)
}
"""The registry: the four benchmarks of the paper's table (a converter module each) and their splits."""

__all__ = ["BENCHMARKS", "BENCHMARK_SCHEMA", "BenchmarkItem", "mathverse_choices", "wemath_choices"]

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
        row_id = cell_text(row.get("id"))
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
