"""Read verl's generation dumps and join them back to the benchmark rows they came from.

verl 0.9.1 writes ``<validation_data_dir>/<global_step>.jsonl`` (``_write_generations`` in its
trainers), one object per sample: ``input`` (decoded prompt), ``output`` (decoded response), ``gts``
(ground truth), ``score``, ``step``, plus every ``reward_extra_info`` key the reward manager returned.
The evaluation reward manager (:mod:`perception_verl.evaluation.reward_manager`) adds ``eval_id`` and
``eval_benchmark``; :class:`DumpKeys` maps these names (change them for other dump producers).

Benchmark rows are read from the parquet files the converter wrote; each is keyed by
``(benchmark, id)``. A dump line whose key is in no file, a key seen twice (``val_kwargs.n`` must
be 1), or a ground truth that differs from the row's is an error naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from perception_verl.errors import PerceptionVerlError
from perception_verl.evaluation.reward_manager import BENCHMARK_KEY, ID_KEY
from perception_verl.jsonl import json_objects
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text

_STEP_FILE = re.compile(r"^(\d+)\.jsonl$")


class DumpError(PerceptionVerlError, ValueError):
    """A dump or benchmark file that cannot be scored unambiguously; the message says where."""


@dataclass(frozen=True)
class DumpKeys:
    """Names of the fields read from each dump line (verl's names by default)."""

    response: str = "output"
    prompt: str = "input"
    ground_truth: str = "gts"
    step: str = "step"
    id: str = ID_KEY
    benchmark: str = BENCHMARK_KEY


@dataclass(frozen=True)
class DumpLine:
    """One generation from a dump."""

    benchmark: str
    id: str
    response: str
    ground_truth: str | None
    step: int | None
    line: int


@dataclass(frozen=True)
class BenchmarkRow:
    """The fields of a benchmark row that scoring needs."""

    benchmark: str
    id: str
    ground_truth: str
    extra_info: dict[str, Any]
    annotations: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.benchmark, self.id)


def latest_dump(directory: Path, step: int | None = None) -> Path:
    """``<directory>/<step>.jsonl``: the given step, else the highest step present."""
    files = {int(m.group(1)): p for p in directory.iterdir() if (m := _STEP_FILE.match(p.name))}
    if not files:
        raise DumpError(f"{directory}: no '<step>.jsonl' dump files (is it trainer.validation_data_dir?)")
    if step is None:
        return files[max(files)]
    if step not in files:
        raise DumpError(f"{directory}: no dump for step {step}; steps present: {sorted(files)}")
    return files[step]


def resolve_dump(path: Path, step: int | None = None) -> Path:
    """A dump file, or the right step file of a dump folder."""
    if path.is_dir():
        return latest_dump(path, step)
    if not path.is_file():
        raise DumpError(f"{path}: no such dump file or folder")
    return path


def _text(value: Any, where: str, key: str) -> str:
    if value is None:
        raise DumpError(f"{where}: missing {key!r}")
    return str(value)


def parse_dump_lines(lines: Iterable[str], *, source: str, keys: DumpKeys = DumpKeys()) -> list[DumpLine]:
    """Parse dump jsonl lines; ``source`` names the input in errors."""
    rows: list[DumpLine] = []
    for number, where, obj in json_objects(lines, source=source, required=(), error=DumpError):
        if keys.id not in obj:
            raise DumpError(
                f"{where}: no {keys.id!r} key; generate with the evaluation reward manager "
                "(reward.reward_manager.module.path=pkg://perception_verl.evaluation.reward_manager, "
                "name=EvalRewardManager) so the dump names each row"
            )
        response = obj.get(keys.response)
        if not isinstance(response, str):
            raise DumpError(f"{where}: {keys.response!r} must be text, got {type(response).__name__}")
        step = obj.get(keys.step)
        truth = obj.get(keys.ground_truth)
        rows.append(
            DumpLine(
                benchmark=_text(obj.get(keys.benchmark), where, keys.benchmark),
                id=_text(obj.get(keys.id), where, keys.id),
                response=response,
                ground_truth=None if truth is None else str(truth),
                step=int(step) if isinstance(step, (int, float)) else None,
                line=number,
            )
        )
    return rows


def read_dump(path: Path, keys: DumpKeys = DumpKeys()) -> list[DumpLine]:
    """Read one dump file (raises :class:`DumpError`)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_dump_lines(handle, source=str(path), keys=keys)
    except OSError as error:
        raise DumpError(f"{path}: cannot read ({error.strerror or error})") from None


def read_benchmark_rows(paths: Sequence[Path]) -> dict[tuple[str, str], BenchmarkRow]:
    """Benchmark rows of the given parquet files, keyed by ``(benchmark, id)``; duplicates are errors."""
    rows: dict[tuple[str, str], BenchmarkRow] = {}
    for path in paths:
        try:
            table = pq.read_table(path, columns=["data_source", "reward_model", "extra_info"])
        except Exception as error:
            raise DumpError(f"{path}: not a benchmark parquet ({type(error).__name__}: {error})") from None
        for index, (source, reward, info) in enumerate(
            zip(
                *(table.column(c).to_pylist() for c in ("data_source", "reward_model", "extra_info")),
                strict=True,
            )
        ):
            if not isinstance(info, dict) or info.get("id") in (None, ""):
                raise DumpError(f"{path}: row {index} has no extra_info.id")
            try:
                ground_truth = ground_truth_text(reward.get("ground_truth"))
            except GroundTruthError as error:
                raise DumpError(f"{path}: row {index} (id {info['id']}): {error}") from None
            row = BenchmarkRow(
                benchmark=str(info.get("benchmark") or source),
                id=str(info["id"]),
                ground_truth=ground_truth,
                extra_info=info,
                annotations=tuple(reward.get("annotations") or ()),
            )
            if row.key in rows:
                raise DumpError(f"{path}: row {index} repeats {row.key} (given twice, or two files overlap)")
            rows[row.key] = row
    return rows


@dataclass(frozen=True)
class Joined:
    """Dump lines joined to their rows, and the rows with no generation."""

    pairs: list[tuple[DumpLine, BenchmarkRow]]
    missing: list[BenchmarkRow]


def join(lines: Sequence[DumpLine], rows: Mapping[tuple[str, str], BenchmarkRow], *, source: str) -> Joined:
    """Join each dump line to its benchmark row (pure)."""
    seen: dict[tuple[str, str], int] = {}
    pairs: list[tuple[DumpLine, BenchmarkRow]] = []
    for line in lines:
        key = (line.benchmark, line.id)
        where = f"{source}:line {line.line}"
        if key in seen:
            raise DumpError(
                f"{where}: {key} was already generated on line {seen[key]}; score greedy runs "
                "(actor_rollout_ref.rollout.val_kwargs.n=1)"
            )
        seen[key] = line.line
        row = rows.get(key)
        if row is None:
            raise DumpError(f"{where}: {key} is in none of the benchmark files given with --data")
        if line.ground_truth is not None and line.ground_truth != row.ground_truth:
            raise DumpError(
                f"{where}: ground truth {line.ground_truth!r} differs from the benchmark row's "
                f"{row.ground_truth!r}; the dump was made from other data"
            )
        pairs.append((line, row))
    missing = [row for key, row in rows.items() if key not in seen]
    return Joined(pairs, missing)
