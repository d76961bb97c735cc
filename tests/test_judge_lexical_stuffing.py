"""The lexical judge cannot be bought by keyword stuffing, and does not credit denials.

Stuffers list the tokens facts are made of (numbers, capital-letter pairs, "angle A".."angle Z",
ABCD-style runs, relation words), in sections, interleaved, or as one-token-away "statements"; the
honest statement of the same facts keeps full credit.
"""

from __future__ import annotations

import itertools
import random
import string

import pytest

from perception_verl.judge.lexical import lexical_verdicts

FACTS = ["AB is parallel to CD", "angle ABC is 71 degrees", "JKLM is a parallelogram"]
HONEST = (
    "<think>\nSince JKLM is a parallelogram, its opposite sides are parallel. We are given that "
    "AB is parallel to CD, and the figure marks angle ABC as 71 degrees, so the adjacent angle is "
    "109 degrees.\n</think>\n<answer>\\boxed{109}</answer>"
)
RELATION_WORDS = [
    *("parallel", "perpendicular", "equal", "bisects", "congruent", "similar", "parallelogram"),
    *("rectangle", "rhombus", "square", "trapezoid", "tangent", "radius", "diameter", "chord"),
    *("midpoint", "isosceles", "equilateral", "right", "angle", "degrees"),
]
LETTERS = string.ascii_uppercase


def numbers() -> list[str]:
    return [str(n) for n in range(0, 361)]


def pairs() -> list[str]:
    return ["".join(p) for p in itertools.combinations(LETTERS, 2)]


def angles() -> list[str]:
    return [f"angle {letter}" for letter in LETTERS]


def runs() -> list[str]:
    return [(LETTERS * 2)[i : i + size] for size in (3, 4) for i in range(26)]


def sectioned() -> str:
    parts = [numbers(), pairs(), angles(), runs(), RELATION_WORDS * 3]
    return "\n\n".join(" ".join(part) for part in parts)


def interleaved(seed: int) -> str:
    rng = random.Random(seed)
    pools = [numbers(), pairs(), angles(), runs(), RELATION_WORDS]
    tokens = [rng.choice(rng.choice(pools)) for _ in range(700)]
    return " ".join(tokens)


def round_robin() -> str:
    pools = [numbers(), pairs(), angles(), runs(), RELATION_WORDS]
    longest = max(len(pool) for pool in pools)
    return " ".join(pool[i % len(pool)] for i in range(longest) for pool in pools)


def statements() -> str:
    """Short "sentences" pairing every angle and segment with many values and relations."""
    out = [f"angle {a}{b}{c} is {n} degrees." for a, b, c in ("ABC", "BAC", "JKL") for n in range(40, 110)]
    out += [f"{p} is {w} to {q}." for p, q in (("AB", "CD"), ("JK", "LM")) for w in RELATION_WORDS]
    out += [f"{run} is a {w}." for run in runs()[:30] for w in RELATION_WORDS[6:12]]
    return " ".join(out)


def stuffers() -> dict[str, str]:
    found = {"sectioned": sectioned(), "round robin": round_robin(), "statements": statements()}
    found.update({f"interleaved {seed}": interleaved(seed) for seed in range(5)})
    found["wrapped"] = f"<think>\n{sectioned()}\n</think>\n<answer>\\boxed{{109}}</answer>"
    return found


@pytest.mark.parametrize(("name", "stuffer"), list(stuffers().items()))
def test_stuffing_earns_at_most_one_of_three(name: str, stuffer: str) -> None:
    assert len(stuffer) >= 1500 or name.startswith("interleaved")
    assert sum(lexical_verdicts(FACTS, stuffer)) <= 1


@pytest.mark.parametrize(("name", "stuffer"), list(stuffers().items()))
def test_stuffing_added_to_a_partial_answer_buys_at_most_one_more_fact(name: str, stuffer: str) -> None:
    partial = "JKLM is a parallelogram, so f = 9."
    assert lexical_verdicts(FACTS, partial) == (0, 0, 1)
    assert sum(lexical_verdicts(FACTS, f"{partial}\n{stuffer}")) <= 2


def test_the_honest_statement_earns_three_of_three() -> None:
    assert lexical_verdicts(FACTS, HONEST) == (1, 1, 1)
    compact = r"Since $JKLM$ is a parallelogram, $AB \parallel CD$ and $\angle ABC = 71^\circ$."
    assert lexical_verdicts(FACTS, compact) == (1, 1, 1)


@pytest.mark.parametrize(
    "denial",
    [
        "AB is not parallel to CD. angle ABC is not 71 degrees. JKLM is not a parallelogram.",
        "AB isn't parallel to CD; angle ABC isn\u2019t 71 degrees; JKLM isn't a parallelogram.",
        "AB is never parallel to CD. No, angle ABC is not 71 degrees. JKLM can't be a parallelogram.",
        "It is not true that AB is parallel to CD. Angle ABC \u2260 71\u00b0. No parallelogram JKLM exists.",
        r"$AB \nparallel CD$, but not AB parallel CD. $\angle ABC \neq 71^\circ$. JKLM is no parallelogram.",
    ],
)
def test_denials_earn_nothing(denial: str) -> None:
    assert lexical_verdicts(FACTS, denial) == (0, 0, 0)


@pytest.mark.parametrize(
    ("fact", "response", "expected"),
    [
        ("AB = 12", "AB is not 12.", 0),
        ("AB = 12", "AB \u2260 12", 0),
        ("AB = 12", "AB = 12, not 13.", 1),
        ("AB = 12", "AB is not 5 but 12... wait, AB = 12.", 1),
        ("AB = 12", "CD is not 5, and AB = 12.", 1),
        ("AB is not parallel to CD", "AB is not parallel to CD.", 1),
        ("AB is not parallel to CD", "AB is parallel to CD.", 0),
        ("angle B is a right angle", "There is no right angle at B.", 0),
        ("The diagram shows a circle", "The diagram shows no circle.", 0),
    ],
)
def test_negation_is_read_in_the_statement_only(fact: str, response: str, expected: int) -> None:
    assert lexical_verdicts([fact], response) == (expected,)


def test_locality_tokens_spread_over_sentences_earn_nothing() -> None:
    spread = "We look at AB first. Much later, CD appears. Lines can be parallel."
    assert lexical_verdicts(["AB is parallel to CD"], spread) == (0,)
    far = "AB " + "and then some more words about the figure " * 3 + "is parallel to CD"
    assert lexical_verdicts(["AB is parallel to CD"], far) == (0,)
