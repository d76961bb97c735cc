"""Match annotation records to problems (pure).

A record is compared with every problem on each key it carries: ``split`` and ``id`` when given,
the normalised problem text, the normalised answer, and the image pixel hashes when both sides
have images. A record whose candidates narrow to one problem, or to several problems that are
identical on text, answer and images (duplicates in the source), is *matched*; none left is
*unmatched*; several different problems left is *ambiguous*. Two matched records that give one
problem different annotations make that problem *conflicting*: it gets no annotations.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from perception_verl.data.schema import IMAGE_PLACEHOLDER

_SPACE = re.compile(r"\s+")

RowKey = tuple[str, int]


def normalise_problem(text: str) -> str:
    """Problem text for comparison: placeholders dropped, NFKC, case-folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text.replace(IMAGE_PLACEHOLDER, " "))
    return _SPACE.sub(" ", text.casefold()).strip()


def normalise_answer(text: str) -> str:
    """Answer for comparison: NFKC, case-folded, all whitespace and surrounding ``$`` removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub("", text).strip("$")


@dataclass(frozen=True)
class ProblemKeys:
    """What a problem can be matched on."""

    row: RowKey
    id: str | None
    problem: str
    answer: str
    image_hashes: tuple[str, ...]

    @property
    def signature(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.problem, self.answer, self.image_hashes)


@dataclass(frozen=True)
class AnnotationRecord:
    """One annotation row: where it came from, its keys (``None`` = not given) and its facts."""

    where: str
    annotations: tuple[str, ...]
    id: str | None = None
    split: str | None = None
    problem: str | None = None
    answer: str | None = None
    image_hashes: tuple[str, ...] | None = None

    @property
    def has_key(self) -> bool:
        return self.id is not None or self.problem is not None


@dataclass
class MatchReport:
    """Annotations per problem row plus the counts (and record locations) of each outcome."""

    assigned: dict[RowKey, tuple[str, ...]] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    conflicting: list[RowKey] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "matched": len(self.matched),
            "unmatched": len(self.unmatched),
            "ambiguous": len(self.ambiguous),
            "conflicting_rows": len(self.conflicting),
            "annotated_rows": len(self.assigned),
        }


class _Index:
    """Problems indexed by each key, so each record is matched by set intersection."""

    def __init__(self, problems: Sequence[ProblemKeys]) -> None:
        self.by_row = {p.row: p for p in problems}
        self.by_id: dict[str, set[RowKey]] = {}
        self.by_split: dict[str, set[RowKey]] = {}
        self.by_problem: dict[str, set[RowKey]] = {}
        self.by_answer: dict[str, set[RowKey]] = {}
        self.by_images: dict[tuple[str, ...], set[RowKey]] = {}
        for p in problems:
            if p.id is not None:
                self.by_id.setdefault(p.id, set()).add(p.row)
            self.by_split.setdefault(p.row[0], set()).add(p.row)
            self.by_problem.setdefault(p.problem, set()).add(p.row)
            self.by_answer.setdefault(p.answer, set()).add(p.row)
            self.by_images.setdefault(p.image_hashes, set()).add(p.row)

    def candidates(self, record: AnnotationRecord, *, use_images: bool) -> set[RowKey]:
        filters: list[set[RowKey]] = []
        if record.split is not None:
            filters.append(self.by_split.get(record.split, set()))
        if record.id is not None:
            filters.append(self.by_id.get(record.id, set()))
        if record.problem is not None:
            filters.append(self.by_problem.get(normalise_problem(record.problem), set()))
        if record.answer is not None:
            filters.append(self.by_answer.get(normalise_answer(record.answer), set()))
        if use_images and record.image_hashes:
            filters.append(self.by_images.get(record.image_hashes, set()))
        filters.sort(key=len)
        found = set(filters[0])
        for other in filters[1:]:
            found &= other
        return found


def match_annotations(
    problems: Sequence[ProblemKeys], records: Iterable[AnnotationRecord], *, use_images: bool = True
) -> MatchReport:
    """Assign each record's annotations to the problem rows it identifies (see module docstring)."""
    index = _Index(problems)
    report = MatchReport()
    claims: dict[RowKey, set[tuple[str, ...]]] = {}
    for record in records:
        if not record.has_key:
            report.unmatched.append(record.where)
            continue
        found = index.candidates(record, use_images=use_images)
        if not found:
            report.unmatched.append(record.where)
            continue
        if len({index.by_row[row].signature for row in found}) > 1:
            report.ambiguous.append(record.where)
            continue
        report.matched.append(record.where)
        for row in found:
            claims.setdefault(row, set()).add(record.annotations)
    for row in sorted(claims):
        versions = claims[row]
        if len(versions) == 1:
            report.assigned[row] = next(iter(versions))
        else:
            report.conflicting.append(row)
    return report
