"""Per-problem correctness labels: read them from jsonl and pair two models' labels on id.

A labels file holds one JSON object per line with at least ``{"id": ..., "correct": true|false}``
(other keys are ignored). Ids are JSON strings or integers and are compared as they are written:
``1`` and ``"1"`` are different ids. Blank lines are skipped. Anything else is an error naming the
file and line; a duplicate id is an error too, because picking one of two labels would silently
change the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perception_verl.errors import PerceptionVerlError
from perception_verl.jsonl import json_objects

LabelId = str | int


class LabelFileError(PerceptionVerlError, ValueError):
    """A labels file that cannot be read unambiguously; the message names the file and line."""


def check_id(value: Any, *, where: str, key: str = "id", error: type[ValueError] = LabelFileError) -> LabelId:
    """Return ``value`` if it is a usable id (a string or an integer, not a bool), else raise ``error``."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise error(f"{where}: {key!r} must be a string or an integer, got {value!r}")
    return value


def parse_label_lines(lines: Iterable[str], *, source: str) -> dict[LabelId, bool]:
    """Parse jsonl label lines into ``{id: correct}``; ``source`` names the input in errors."""
    labels: dict[LabelId, bool] = {}
    first_line: dict[LabelId, int] = {}
    rows = json_objects(lines, source=source, required=("id", "correct"), error=LabelFileError)
    for number, where, row in rows:
        label_id = check_id(row["id"], where=where)
        correct = row["correct"]
        if not isinstance(correct, bool):
            raise LabelFileError(f"{where}: 'correct' must be true or false, got {correct!r}")
        if label_id in labels:
            raise LabelFileError(
                f"{where}: duplicate id {label_id!r} (first seen on line {first_line[label_id]})"
            )
        labels[label_id] = correct
        first_line[label_id] = number
    return labels


def read_labels(path: str | Path) -> dict[LabelId, bool]:
    """Read a labels jsonl file into ``{id: correct}``; raises :class:`LabelFileError` on bad input."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_label_lines(handle, source=str(path))
    except OSError as exc:
        raise LabelFileError(f"{path}: cannot read labels ({exc.strerror or exc})") from exc


@dataclass(frozen=True)
class ContingencyTable:
    """The paired 2x2 table of model A vs model B correctness.

    ``b`` counts pairs where A is right and B wrong, ``c`` where A is wrong and B right. The
    concordant cells are ``None`` when only the discordant counts are known.
    """

    both_correct: int | None
    b: int
    c: int
    both_wrong: int | None

    @property
    def n_discordant(self) -> int:
        return self.b + self.c

    @property
    def n_pairs(self) -> int | None:
        if self.both_correct is None or self.both_wrong is None:
            return None
        return self.both_correct + self.b + self.c + self.both_wrong

    def as_dict(self) -> dict[str, int | None]:
        return {
            "both_correct": self.both_correct,
            "a_correct_b_wrong": self.b,
            "a_wrong_b_correct": self.c,
            "both_wrong": self.both_wrong,
        }


@dataclass(frozen=True)
class PairedLabels:
    """Two label sets joined on id: the table over paired ids and the ids found in only one file."""

    table: ContingencyTable
    only_a: tuple[LabelId, ...]
    only_b: tuple[LabelId, ...]

    @property
    def n_unpaired(self) -> int:
        return len(self.only_a) + len(self.only_b)


def pair_labels(labels_a: Mapping[LabelId, bool], labels_b: Mapping[LabelId, bool]) -> PairedLabels:
    """Join two ``{id: correct}`` maps on id and count the 2x2 table (pure)."""
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for label_id, correct_a in labels_a.items():
        if label_id in labels_b:
            counts[(correct_a, labels_b[label_id])] += 1
    table = ContingencyTable(
        both_correct=counts[(True, True)],
        b=counts[(True, False)],
        c=counts[(False, True)],
        both_wrong=counts[(False, False)],
    )
    only_a = tuple(label_id for label_id in labels_a if label_id not in labels_b)
    only_b = tuple(label_id for label_id in labels_b if label_id not in labels_a)
    return PairedLabels(table=table, only_a=only_a, only_b=only_b)
