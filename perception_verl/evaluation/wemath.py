"""WeMath's four-dimensional metric (IK, IG, CM, RM) and its strict and loose scores.

We-Math decomposes each composite problem into one-step sub-problems. Every row of the testmini split
carries the composite problem's ``ID`` (shared by its rows) and a ``key``: ``<N>steps_<i>`` for
sub-problem ``i`` of an ``N``-step problem, ``<N>steps_multi`` for the composite problem itself
(testmini: 360 two-step and 165 three-step problems, 1740 rows). Each problem with every row scored
falls in one category:

- IK, insufficient knowledge: some sub-problem wrong, composite wrong;
- IG, inadequate generalization: every sub-problem right, composite wrong;
- CM, complete mastery: composite right and every sub-problem right (strict) or any (loose);
- RM, rote memorization: composite right and some sub-problem wrong (strict) or every one (loose).

With ``n`` problems, ``score = (n - 0.5 IG - RM - IK) / n`` (= ``(CM + 0.5 IG) / n``) under each
variant; IK, IG and CM rates are shares of ``n``, the RM rate is a share of ``CM + RM``.

A problem with a row that could not be scored (a failed answer judge, no generation) is counted as
unclassified and left out of ``n``, never scored wrong, as the accuracy table treats such rows. A
problem whose rows are incomplete (a sub-problem or the composite absent), repeated or of mixed step
counts is an error naming the problem: We-Math's own script would silently drop it from every
category while still dividing by 525.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from perception_verl.data.wemath_keys import COMPOSITE, WeMathError, parse_key

VARIANTS = ("strict", "loose")


@dataclass(frozen=True)
class Outcome:
    """One WeMath row: its problem ``ID``, its ``key``, and whether it was answered right (None: unscored)."""

    problem: str
    key: str
    correct: bool | None


@dataclass(frozen=True)
class WeMathMetric:
    """Counts of the four dimensions over the classified problems, with rates and scores in percent."""

    problems: int
    unclassified: int
    insufficient_knowledge: int
    inadequate_generalization: int
    complete_mastery_strict: int
    complete_mastery_loose: int
    rote_memorization_strict: int
    rote_memorization_loose: int

    @property
    def classified(self) -> int:
        return self.problems - self.unclassified

    def counts(self, variant: str) -> dict[str, int]:
        """``{"IK", "IG", "CM", "RM"}`` counts under ``strict`` or ``loose``."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        strict = variant == "strict"
        return {
            "IK": self.insufficient_knowledge,
            "IG": self.inadequate_generalization,
            "CM": self.complete_mastery_strict if strict else self.complete_mastery_loose,
            "RM": self.rote_memorization_strict if strict else self.rote_memorization_loose,
        }

    def rates(self, variant: str) -> dict[str, float | None]:
        """IK, IG, CM in percent of the classified problems; RM in percent of CM + RM (None if 0)."""
        counts = self.counts(variant)
        totals = {name: self.classified for name in ("IK", "IG", "CM")}
        totals["RM"] = counts["CM"] + counts["RM"]
        return {name: 100.0 * counts[name] / totals[name] if totals[name] else None for name in counts}

    def score(self, variant: str) -> float | None:
        """``(n - 0.5 IG - RM - IK) / n`` in percent; None when no problem is classified."""
        counts = self.counts(variant)
        n = self.classified
        lost = 0.5 * counts["IG"] + counts["RM"] + counts["IK"]
        return 100.0 * (n - lost) / n if n else None

    def as_dict(self) -> dict[str, object]:
        """The JSON form: problem counts, then per variant the counts, rates and score."""
        out: dict[str, object] = {
            "problems": self.problems,
            "classified": self.classified,
            "unclassified": self.unclassified,
        }
        for variant in VARIANTS:
            rates, score = self.rates(variant), self.score(variant)
            out[variant] = {**self.counts(variant), "rates": rates, "score": score}
        return out


def group(outcomes: Iterable[Outcome]) -> dict[str, dict[str, bool | None]]:
    """``{problem: {part: correct}}`` in first-seen order, every problem checked complete."""
    problems: dict[str, dict[str, bool | None]] = {}
    steps: dict[str, int] = {}
    for outcome in outcomes:
        try:
            key = parse_key(outcome.key)
        except WeMathError as error:
            raise WeMathError(f"problem {outcome.problem!r}: {error}") from None
        parts = problems.setdefault(outcome.problem, {})
        if steps.setdefault(outcome.problem, key.steps) != key.steps:
            raise WeMathError(
                f"problem {outcome.problem!r} mixes {steps[outcome.problem]}-step and {key.steps}-step keys"
            )
        if key.part in parts:
            raise WeMathError(f"problem {outcome.problem!r} has key {outcome.key!r} twice")
        parts[key.part] = outcome.correct
    for problem, parts in problems.items():
        needed = [str(i) for i in range(1, steps[problem] + 1)] + [COMPOSITE]
        absent = [f"{steps[problem]}steps_{part}" for part in needed if part not in parts]
        if absent:
            raise WeMathError(
                f"problem {problem!r} is incomplete: no row with key {', '.join(absent)} "
                "(was WeMath built with --sample or --subset?)"
            )
    return problems


def four_dimensional(outcomes: Iterable[Outcome]) -> WeMathMetric:
    """Classify every complete problem of ``outcomes`` (pure); see the module docstring."""
    problems = group(outcomes)
    unclassified = ik = ig = cm_strict = cm_loose = rm_strict = rm_loose = 0
    for parts in problems.values():
        if any(correct is None for correct in parts.values()):
            unclassified += 1
            continue
        composite = bool(parts[COMPOSITE])
        subs = [bool(correct) for part, correct in parts.items() if part != COMPOSITE]
        if not composite:
            ig += all(subs)
            ik += not all(subs)
            continue
        cm_strict += all(subs)
        rm_strict += not all(subs)
        cm_loose += any(subs)
        rm_loose += not any(subs)
    return WeMathMetric(
        problems=len(problems),
        unclassified=unclassified,
        insufficient_knowledge=ik,
        inadequate_generalization=ig,
        complete_mastery_strict=cm_strict,
        complete_mastery_loose=cm_loose,
        rote_memorization_strict=rm_strict,
        rote_memorization_loose=rm_loose,
    )
