"""WeMath's four-dimensional metric on hand-built problems (every figure counted by hand below).

We-Math's testmini has no stand-alone one-step problem: each one-step question is a sub-problem row
(``2steps_1``, ``3steps_2``, ...) of a two- or three-step composite problem (``<N>steps_multi``).
"""

from __future__ import annotations

import random

import pytest

from perception_verl.data.wemath_keys import StepKey, WeMathError, parse_key
from perception_verl.evaluation.wemath import Outcome, four_dimensional

T, F, U = True, False, None  # right, wrong, unscored

# problem -> (sub-problem outcomes, composite outcome) and its category (strict / loose):
PROBLEMS = {
    "2steps_1": ([T, T], T),  # CM / CM
    "2steps_2": ([T, F], T),  # RM / CM  (one sub-problem right is enough for loose mastery)
    "2steps_3": ([F, F], T),  # RM / RM
    "2steps_4": ([T, T], F),  # IG
    "2steps_5": ([T, F], F),  # IK
    "3steps_1": ([T, T, T], T),  # CM / CM
    "3steps_2": ([F, F, T], T),  # RM / CM
    "3steps_3": ([F, F, F], F),  # IK
    "3steps_4": ([T, T, T], F),  # IG
    "3steps_5": ([F, T, T], U),  # unclassified: its composite was not scored
}
# n = 9 classified of 10.  IK = 2 (2steps_5, 3steps_3), IG = 2 (2steps_4, 3steps_4).
# Strict: CM = 2 (2steps_1, 3steps_1), RM = 3 (2steps_2, 2steps_3, 3steps_2); 2 + 2 + 2 + 3 = 9.
# Loose:  CM = 4 (2steps_1, 2steps_2, 3steps_1, 3steps_2), RM = 1 (2steps_3); 2 + 2 + 4 + 1 = 9.
# Score strict = (9 - 0.5*2 - 3 - 2) / 9 = 3/9 = 33.33%; loose = (9 - 0.5*2 - 1 - 2) / 9 = 5/9 = 55.56%.
# Rates: IK = IG = 2/9 = 22.22%; strict CM 2/9 = 22.22%, RM 3/(2+3) = 60%; loose CM 4/9 = 44.44%,
# RM 1/(4+1) = 20%.


def outcomes(problems: dict = PROBLEMS) -> list[Outcome]:
    rows = []
    for problem, (subs, composite) in problems.items():
        steps = len(subs)
        rows += [Outcome(problem, f"{steps}steps_{i}", c) for i, c in enumerate(subs, start=1)]
        rows.append(Outcome(problem, f"{steps}steps_multi", composite))
    return rows


def test_four_dimensions_match_the_hand_count() -> None:
    metric = four_dimensional(outcomes())
    assert (metric.problems, metric.classified, metric.unclassified) == (10, 9, 1)
    assert metric.counts("strict") == {"IK": 2, "IG": 2, "CM": 2, "RM": 3}
    assert metric.counts("loose") == {"IK": 2, "IG": 2, "CM": 4, "RM": 1}
    assert metric.score("strict") == pytest.approx(100 * 3 / 9)
    assert metric.score("loose") == pytest.approx(100 * 5 / 9)
    two_ninths = 200 / 9
    strict, loose = metric.rates("strict"), metric.rates("loose")
    assert strict == pytest.approx({"IK": two_ninths, "IG": two_ninths, "CM": two_ninths, "RM": 60.0})
    assert loose == pytest.approx({"IK": two_ninths, "IG": two_ninths, "CM": 2 * two_ninths, "RM": 20.0})
    summary = metric.as_dict()
    assert summary["strict"]["score"] == pytest.approx(33.333, abs=1e-3)
    assert (summary["problems"], summary["classified"], summary["unclassified"]) == (10, 9, 1)


def test_row_order_does_not_matter() -> None:
    rows = outcomes()
    random.Random(7).shuffle(rows)
    assert four_dimensional(rows) == four_dimensional(outcomes())


def test_nothing_classified_has_no_score() -> None:
    metric = four_dimensional(outcomes({"2steps_9": ([U, T], T)}))
    assert (metric.classified, metric.unclassified) == (0, 1)
    assert metric.score("strict") is None and metric.rates("loose")["IK"] is None


def test_no_rows_is_no_problem() -> None:
    metric = four_dimensional([])
    assert metric.problems == 0 and metric.score("loose") is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [o for o in outcomes() if (o.problem, o.key) != ("3steps_2", "3steps_2")],
            "problem '3steps_2' is incomplete: no row with key 3steps_2",
        ),
        (
            [o for o in outcomes() if (o.problem, o.key) != ("2steps_1", "2steps_multi")],
            "problem '2steps_1' is incomplete: no row with key 2steps_multi",
        ),
        ([*outcomes(), Outcome("2steps_1", "2steps_2", True)], "problem '2steps_1' has key '2steps_2' twice"),
        (
            [*outcomes(), Outcome("2steps_1", "3steps_3", True)],
            "problem '2steps_1' mixes 2-step and 3-step keys",
        ),
        ([Outcome("x", "2steps_one", True)], "problem 'x': key '2steps_one' is not '<N>steps_<i>'"),
    ],
)
def test_malformed_problems_are_named(rows: list[Outcome], message: str) -> None:
    with pytest.raises(WeMathError) as caught:
        four_dimensional(rows)
    assert str(caught.value).startswith(message)


def test_parse_key() -> None:
    assert parse_key("3steps_2") == StepKey(3, "2")
    assert parse_key(" 2steps_multi ") == StepKey(2, "multi")
    with pytest.raises(WeMathError, match="at least two steps"):
        parse_key("1steps_1")
    with pytest.raises(WeMathError, match="sub-problem 3 of a 2-step problem"):
        parse_key("2steps_3")
    with pytest.raises(ValueError, match="variant must be one of"):
        four_dimensional(outcomes()).score("average")
