"""Build verl-ready Geometry3K parquet files with visual annotations.

Pipeline: read the requested source splits -> validate each row and normalise its images to PNG
(errors name split, index and id) -> read annotation records and match them to rows -> build
verl rows -> write every output atomically. Same inputs give byte-identical files.

Splits: Geometry3K has ``train``/``validation``/``test``. ``split_map`` says which source splits
feed which output (default ``train -> train``, ``test -> test``; ``validation`` is left out unless
mapped, e.g. ``{"train": "train", "validation": "train", "test": "test"}``). Rows keep source
order, source splits in ``split_map`` order. ``only_annotated`` filters the ``train`` output only:
validation data should cover the whole test split.

Checks, each naming the row (:mod:`perception_verl.data.checks`): a problem text longer than
``max_problem_chars``, two rows of one source split with the same id, more annotations on a row than
``max_annotations`` or one longer than ``max_annotation_chars`` stop the build (:class:`RowError`; the
defaults follow the judge's 512-token answer budget). An annotation that reads as an instruction to the
judge is warned about and counted in the summary (``suspect``); with ``drop_suspect_annotations`` it is
also dropped from its row (counted as ``dropped``). The splits are written as one set
(:func:`~perception_verl.data.writer.write_split_set`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from tqdm import tqdm

from perception_verl.data.annotation_source import (
    PUBLISHED_ANNOTATIONS,
    AnnotationLoad,
    load_annotation_records,
)
from perception_verl.data.checks import (
    MAX_ANNOTATION_CHARS,
    MAX_ANNOTATIONS,
    MAX_PROBLEM_CHARS,
    annotation_problems,
    reads_as_instruction,
)
from perception_verl.data.images import (
    TEXT_ROW_CRASH,
    row_images,
)
from perception_verl.data.loading import load_split_rows
from perception_verl.data.matching import MatchReport, ProblemKeys, match_annotations, normalise_answer
from perception_verl.data.matching import normalise_problem as _norm_problem
from perception_verl.data.schema import (
    DEFAULT_INSTRUCTION,
    ROW_SCHEMA,
    ConvertedProblem,
    RowError,
    build_row,
    check_instruction,
    describe_row,
)
from perception_verl.data.writer import write_split_set
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text

logger = logging.getLogger(__name__)

GEOMETRY3K = "hiyouga/geometry3k"
DEFAULT_SPLIT_MAP: dict[str, str] = {"train": "train", "test": "test"}
FILTERED_OUTPUT = "train"


@dataclass(frozen=True)
class BuildConfig:
    """Everything one build needs; ``outputs`` maps output names (values of ``split_map``) to paths."""

    outputs: Mapping[str, Path]
    source: str = GEOMETRY3K
    annotations: str | None = PUBLISHED_ANNOTATIONS
    annotation_column: str | None = None
    split_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SPLIT_MAP))
    instruction: str = DEFAULT_INSTRUCTION
    only_annotated: bool = False
    match_images: bool = True
    progress: bool = True
    max_annotations: int = MAX_ANNOTATIONS
    max_annotation_chars: int = MAX_ANNOTATION_CHARS
    max_problem_chars: int = MAX_PROBLEM_CHARS
    drop_suspect_annotations: bool = False


@dataclass(frozen=True)
class OutputSummary:
    """Counts for one written file."""

    name: str
    path: Path
    source_splits: tuple[str, ...]
    rows_in: int
    rows_out: int
    annotated: int
    annotations_min: int
    annotations_mean: float
    annotations_max: int


@dataclass
class BuildReport:
    """What a build read, matched and wrote."""

    outputs: list[OutputSummary] = field(default_factory=list)
    annotation_load: AnnotationLoad | None = None
    match: MatchReport | None = None
    suspect: list[str] = field(default_factory=list)
    """Rows (and annotation numbers) whose annotation reads as an instruction to the judge."""
    dropped: int = 0
    """Suspect annotations dropped (``drop_suspect_annotations``)."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def convert_row(
    split: str, index: int, row: Mapping[str, Any], *, max_problem_chars: int = MAX_PROBLEM_CHARS
) -> ConvertedProblem:
    """Validate one Geometry3K row and normalise its images (raises :class:`RowError`)."""
    row_id = _text(row.get("id")) or None
    where = describe_row(split, index, row_id)
    problem = _text(row.get("problem"))
    if not problem or not _norm_problem(problem):
        raise RowError(f"{where}: empty problem")
    if len(problem) > max_problem_chars:
        raise RowError(
            f"{where}: problem text has {len(problem)} characters, more than max_problem_chars="
            f"{max_problem_chars} (--max-problem-chars)"
        )
    try:
        answer = ground_truth_text(row.get("answer"))
    except GroundTruthError as error:
        raise RowError(f"{where}: {'missing' if error.missing else 'unusable'} answer: {error}") from None
    images = row_images(row.get("images"), where, RowError)
    if not images:
        raise RowError(f"{where}: missing image (a vision-language policy crashes verl at {TEXT_ROW_CRASH})")
    return ConvertedProblem(
        split=split,
        index=index,
        id=row_id,
        problem=problem,
        answer=answer,
        images=tuple(image.png for image in images),
        image_hashes=tuple(image.pixel_hash for image in images),
    )


def convert_split(
    split: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    progress: bool,
    max_problem_chars: int = MAX_PROBLEM_CHARS,
) -> list[ConvertedProblem]:
    """Convert a split's rows in order, with a progress bar; :class:`RowError` on a repeated id."""
    bar = tqdm(rows, desc=f"geometry3k {split}", unit="row", disable=not progress)
    converted = [
        convert_row(split, index, row, max_problem_chars=max_problem_chars) for index, row in enumerate(bar)
    ]
    seen: dict[str, ConvertedProblem] = {}
    for problem in converted:
        if problem.id is None:
            continue
        first = seen.setdefault(problem.id, problem)
        if first is not problem:
            raise RowError(
                f"{describe_row(split, problem.index, problem.id)}: duplicate id, also "
                f"{describe_row(split, first.index, first.id)}; ids must be unique within a split"
            )
    return converted


def checked_facts(
    problem: ConvertedProblem, facts: Sequence[str], config: BuildConfig, report: BuildReport
) -> tuple[str, ...]:
    """``facts`` of one row after the bounds (:class:`RowError`) and the instruction check."""
    where = describe_row(problem.split, problem.index, problem.id)
    problems = annotation_problems(
        facts, max_annotations=config.max_annotations, max_chars=config.max_annotation_chars
    )
    if problems:
        raise RowError(f"{where}: {'; '.join(problems)}")
    kept = []
    for number, fact in enumerate(facts, start=1):
        if reads_as_instruction(fact):
            report.suspect.append(f"{where} annotation {number}")
            action = "dropped" if config.drop_suspect_annotations else "kept (--drop-suspect-annotations)"
            logger.warning(
                "%s: annotation %d reads as an instruction to the judge, not a fact: %r; %s",
                where, number, fact[:200], action,
            )  # fmt: skip
            if config.drop_suspect_annotations:
                report.dropped += 1
                continue
        kept.append(fact)
    return tuple(kept)


def problem_keys(problem: ConvertedProblem) -> ProblemKeys:
    return ProblemKeys(
        row=(problem.split, problem.index),
        id=problem.id,
        problem=_norm_problem(problem.problem),
        answer=normalise_answer(problem.answer),
        image_hashes=problem.image_hashes,
    )


def _summary(
    name: str, path: Path, splits: tuple[str, ...], rows_in: int, rows: Sequence[Mapping[str, Any]]
) -> OutputSummary:
    counts = [row["extra_info"]["num_annotations"] for row in rows if row["extra_info"]["num_annotations"]]
    return OutputSummary(
        name=name,
        path=path,
        source_splits=splits,
        rows_in=rows_in,
        rows_out=len(rows),
        annotated=len(counts),
        annotations_min=min(counts, default=0),
        annotations_mean=fmean(counts) if counts else 0.0,
        annotations_max=max(counts, default=0),
    )


def _check_config(config: BuildConfig) -> str:
    instruction = check_instruction(config.instruction)
    if not config.split_map:
        raise ValueError("split_map is empty: nothing to convert")
    unknown = sorted(set(config.split_map.values()) - set(config.outputs))
    if unknown:
        raise ValueError(
            f"split_map names output(s) {unknown} with no path; outputs: {sorted(config.outputs)}"
        )
    unused = sorted(set(config.outputs) - set(config.split_map.values()))
    if unused:
        raise ValueError(
            f"output(s) {unused} are fed by no source split; split_map: {dict(config.split_map)}"
        )
    if config.only_annotated and not config.annotations:
        raise ValueError("only_annotated needs an annotation source")
    for name in ("max_annotations", "max_annotation_chars", "max_problem_chars"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    return instruction


def build_geometry3k(config: BuildConfig) -> BuildReport:
    """Run the whole conversion and write the outputs; returns counts for the summary table."""
    instruction = _check_config(config)
    source_splits = list(config.split_map)
    outputs = [Path(path) for path in config.outputs.values()]
    raw = load_split_rows(config.source, source_splits, exclude=outputs)
    converted = {
        split: convert_split(
            split, raw[split], progress=config.progress, max_problem_chars=config.max_problem_chars
        )
        for split in source_splits
    }
    del raw

    report = BuildReport()
    assigned: Mapping[tuple[str, int], tuple[str, ...]] = {}
    if config.annotations:
        report.annotation_load = load_annotation_records(
            config.annotations,
            annotation_column=config.annotation_column,
            use_images=config.match_images,
            progress=config.progress,
            exclude=outputs,
        )
        problems = [problem_keys(p) for split in source_splits for p in converted[split]]
        report.match = match_annotations(
            problems, report.annotation_load.records, use_images=config.match_images
        )
        assigned = report.match.assigned
        _log_match(report.match, use_images=config.match_images)
        if not assigned:
            raise ValueError(
                f"no annotation from {config.annotations} matched any problem "
                f"({report.match.counts()}); check --annotation-column and the source"
                + (", or match without image hashes (--ignore-image-hash)" if config.match_images else "")
            )

    staged: dict[Path, list[dict[str, Any]]] = {}
    for name, path in config.outputs.items():
        splits = tuple(split for split in source_splits if config.split_map[split] == name)
        rows_in = 0
        rows: list[dict[str, Any]] = []
        for split in splits:
            for problem in converted[split]:
                rows_in += 1
                facts = assigned.get((problem.split, problem.index), ())
                if facts:
                    facts = checked_facts(problem, facts, config, report)
                if config.only_annotated and name == FILTERED_OUTPUT and not facts:
                    continue
                rows.append(build_row(problem, facts, instruction))
        if not rows:
            raise ValueError(f"output {name!r} would be empty (source splits {list(splits)})")
        staged[Path(path)] = rows
        report.outputs.append(_summary(name, Path(path), splits, rows_in, rows))
    write_split_set(staged, ROW_SCHEMA)
    return report


def _log_match(match: MatchReport, *, use_images: bool) -> None:
    logger.info("annotation matching: %s", match.counts())
    for label, wheres in (("unmatched", match.unmatched), ("ambiguous", match.ambiguous)):
        if wheres:
            shown = ", ".join(wheres[:5]) + (" ..." if len(wheres) > 5 else "")
            logger.warning("%d annotation record(s) %s, e.g. %s", len(wheres), label, shown)
    if match.unmatched and use_images:
        logger.warning("records whose images were re-sized or re-coloured match only without image hashes")
    if match.conflicting:
        logger.warning(
            "%d row(s) got conflicting annotations and keep none: %s",
            len(match.conflicting),
            match.conflicting[:5],
        )


def _padded(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    return [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]


def format_summary(report: BuildReport) -> str:
    """The closing summary as a plain-text table.

    Per output: source splits, rows read, rows written, annotated rows, and the min/mean/max
    number of facts over its annotated rows; then the annotation read and match counts.
    """
    header = (
        "output",
        "from splits",
        "rows in",
        "rows out",
        "annotated",
        "ann min",
        "ann mean",
        "ann max",
        "path",
    )
    lines = [header]
    for out in report.outputs:
        lines.append(
            (
                out.name,
                ",".join(out.source_splits),
                str(out.rows_in),
                str(out.rows_out),
                str(out.annotated),
                str(out.annotations_min),
                f"{out.annotations_mean:.2f}",
                str(out.annotations_max),
                str(out.path),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = ["  ".join(_padded(line, widths)).rstrip() for line in lines]
    table.insert(1, "  ".join("-" * width for width in widths))
    if report.annotation_load is not None and report.match is not None:
        load, counts = report.annotation_load, report.match.counts()
        table.append(
            f"annotation rows read {load.rows_read}: used {len(load.records)}, "
            f"skipped failed {load.skipped_failed}, skipped empty {load.skipped_empty}"
        )
        table.append(
            "annotation records: matched {matched}, unmatched {unmatched}, ambiguous {ambiguous}; "
            "rows: conflicting {conflicting_rows}, annotated {annotated_rows}".format(**counts)
        )
    if report.suspect:
        action = f"dropped {report.dropped}" if report.dropped else "kept: --drop-suspect-annotations drops"
        table.append(
            f"annotations that read as instructions to the judge: {len(report.suspect)} ({action}), e.g. "
            + ", ".join(report.suspect[:3])
        )
    return "\n".join(table) + "\n"
