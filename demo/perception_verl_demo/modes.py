"""The two response modes of the miniature's starting policy, its warm-up mix, and the step-0 check.

A *perceptive* response first states the problem's annotated facts (read from the problem text: the
tiny policy cannot read a figure), then reasons; a *terse* one goes straight to the rule and the
answer and states no fact. Each is written correct or wrong, always in the policy format
(``<think>\\n..\\n</think>\\n<answer>\\n..\\boxed{..}..\\n</answer>``).

The warm-up mix weights the four kinds (:data:`DEFAULT_MIX`, perceptive-correct : perceptive-wrong :
terse-correct : terse-wrong = 2 : 1 : 4 : 2): perceptive in a third of responses, two thirds correct
*in both modes*, so accuracy is not tied to the mode and an accuracy-only run has no reason to state
more facts, while a perception-rewarded one does.

:func:`step0_check` reads sampled responses (problem id, response) of the warmed policy, and reports
per mode the format and accuracy, the perceptive share, and accuracy by mode within problems:
Fisher's exact test per problem and the Cochran-Mantel-Haenszel test pooled over problems (scipy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perception_verl_demo.geometry import GeometryProblem

MODES = ("perceptive", "terse")
PERCEPTIVE_OPENER = "The figure shows:"
Kind = tuple[str, bool]
"""(mode, correct)."""

DEFAULT_MIX: dict[Kind, float] = {
    ("perceptive", True): 2.0,
    ("perceptive", False): 1.0,
    ("terse", True): 4.0,
    ("terse", False): 2.0,
}


@dataclass(frozen=True)
class ModeResponse:
    """One warm-up response of a problem: its mode, whether its answer is right, and its weight."""

    problem_id: int
    mode: str
    correct: bool
    text: str
    weight: float


def policy_format(think: str, answer: str) -> str:
    """The exact policy format the format reward accepts."""
    return f"<think>\n{think}\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>"


def perceptive_response(problem: GeometryProblem, correct: bool) -> str:
    """Restates the problem's statement of its facts (every annotated fact), then reasons to the right
    or a wrong answer. The statement is the problem text's own clause, so a tiny policy can copy it; it
    stands on a line of its own because in the prompt it follows the image, not a space, and the tiny
    byte-level tokenizer splits ``" KBSM"`` and ``"KBSM"`` differently: on its own line the restated
    clause is the prompt's tokens, one for one."""
    reasoning = problem.reasoning if correct else problem.wrong_reasoning
    return policy_format(
        f"{PERCEPTIVE_OPENER}\n{problem.statement}\n{reasoning}",
        problem.answer if correct else problem.wrong_answer,
    )


def perceptive_prefix(problem: GeometryProblem) -> str:
    """A perceptive response up to its statement clause: forced, it asks the policy to restate the facts."""
    return perceptive_response(problem, True).split(problem.statement, 1)[0]


def terse_response(problem: GeometryProblem, correct: bool) -> str:
    """Names the rule and the answer (right or wrong) and states no fact of the figure."""
    text = problem.terse if correct else problem.wrong_terse
    return policy_format(text, problem.answer if correct else problem.wrong_answer)


def response(problem: GeometryProblem, mode: str, correct: bool) -> str:
    if mode == "perceptive":
        return perceptive_response(problem, correct)
    if mode == "terse":
        return terse_response(problem, correct)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def check_mix(mix: Mapping[Kind, float]) -> dict[Kind, float]:
    """The mix normalised to sum 1 (raises on unknown kinds or non-positive totals)."""
    unknown = [kind for kind in mix if kind[0] not in MODES or not isinstance(kind[1], bool)]
    if unknown:
        raise ValueError(f"unknown mix kinds {unknown}; kinds are (mode, correct) with mode in {MODES}")
    if any(w < 0 or not math.isfinite(w) for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"mix weights must be finite, >= 0 and not all 0: {dict(mix)}")
    total = sum(mix.values())
    return {kind: weight / total for kind, weight in mix.items()}


def parse_mix(text: str) -> dict[Kind, float]:
    """``"2:1:4:2"`` (perceptive-correct : perceptive-wrong : terse-correct : terse-wrong) as a mix."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(
            "a mix is four weights a:b:c:d (perceptive-correct, perceptive-wrong, terse-correct, "
            f"terse-wrong), got {text!r}"
        )
    kinds = [("perceptive", True), ("perceptive", False), ("terse", True), ("terse", False)]
    return check_mix(dict(zip(kinds, (float(p) for p in parts), strict=True)))


def warmup_responses(
    problems: Sequence[GeometryProblem], mix: Mapping[Kind, float] = DEFAULT_MIX
) -> list[ModeResponse]:
    """Every problem's four kinds of response with the mix's (normalised) weights (pure)."""
    weights = check_mix(mix)
    return [
        ModeResponse(problem.id, mode, correct, response(problem, mode, correct), weight)
        for problem in problems
        for (mode, correct), weight in weights.items()
        if weight > 0
    ]


# --- reading responses back ---------------------------------------------------------------------------


def states_facts(response_text: str, facts: Sequence[str], *, threshold: float = 1.0) -> bool:
    """The lexical judge finds at least ``threshold`` of the facts stated (the evaluation's perception
    label, ``label-perception --threshold 1.0``)."""
    from perception_verl.judge.lexical import lexical_verdicts

    verdicts = lexical_verdicts(list(facts), response_text)
    return bool(verdicts) and sum(verdicts) / len(verdicts) >= threshold


def detect_mode(response_text: str, facts: Sequence[str], *, threshold: float = 1.0) -> str:
    """The mode the policy chose: ``perceptive`` when its reasoning opens with the perceptive opener (a
    tiny policy may then garble the facts) or it states the facts (:func:`states_facts`), else ``terse``."""
    think = response_text.split("<think>", 1)[-1].lstrip()
    if think.startswith(PERCEPTIVE_OPENER) or states_facts(response_text, facts, threshold=threshold):
        return "perceptive"
    return "terse"


@dataclass(frozen=True)
class Scored:
    """One sampled response read back: its mode, format, and accuracy."""

    problem_id: int
    mode: str
    format: float
    correct: bool
    states_facts: bool = False


def score_sample(problem: GeometryProblem, response_text: str) -> Scored:
    """Mode, format reward and accuracy (math-verify) of one response (the project's reward functions)."""
    from perception_verl.rewards.accuracy import accuracy_reward
    from perception_verl.rewards.format import format_reward

    accuracy = accuracy_reward(response_text, problem.answer)
    return Scored(
        problem.id,
        detect_mode(response_text, problem.facts),
        format_reward(response_text),
        bool(accuracy.score),
        states_facts(response_text, problem.facts),
    )


def _fisher(table: list[list[int]]) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact(table).pvalue)


def mode_accuracy_tables(scored: Sequence[Scored]) -> dict[int, list[list[int]]]:
    """Per problem, the 2x2 table [[perceptive right, wrong], [terse right, wrong]] (pure)."""
    tables: dict[int, list[list[int]]] = {}
    for row in scored:
        table = tables.setdefault(row.problem_id, [[0, 0], [0, 0]])
        table[0 if row.mode == "perceptive" else 1][0 if row.correct else 1] += 1
    return tables


def cmh_test(tables: Sequence[list[list[int]]]) -> dict[str, float | None]:
    """Cochran-Mantel-Haenszel test of mode vs accuracy over problem strata (scipy); None if undefined."""
    import numpy as np
    from scipy.stats import chi2

    usable = [t for t in tables if sum(t[0]) and sum(t[1]) and (t[0][0] + t[1][0]) and (t[0][1] + t[1][1])]
    if not usable:
        return {"statistic": None, "p": None, "pooled_odds_ratio": None, "strata": 0}
    array = np.array(usable, dtype=float).transpose(1, 2, 0)  # 2 x 2 x K
    a = array[0, 0]
    n1, n2 = array[0].sum(axis=0), array[1].sum(axis=0)
    m1, m2 = array[:, 0].sum(axis=0), array[:, 1].sum(axis=0)
    total = n1 + n2
    expected = n1 * m1 / total
    variance = n1 * n2 * m1 * m2 / (total * total * (total - 1))
    numerator = (abs(a.sum() - expected.sum()) - 0.5) ** 2
    statistic = float(numerator / variance.sum()) if variance.sum() > 0 else 0.0
    b, c, d = array[0, 1], array[1, 0], array[1, 1]
    ratio_den = float((b * c / total).sum())
    return {
        "statistic": statistic,
        "p": float(chi2.sf(statistic, 1)),
        "pooled_odds_ratio": float((a * d / total).sum() / ratio_den) if ratio_den > 0 else None,
        "strata": len(usable),
    }


def step0_check(scored: Sequence[Scored], *, alpha: float = 0.05) -> dict[str, Any]:
    """The step-0 report: format, perceptive share, accuracy per mode, and mode vs accuracy within problems.

    ``tied`` is True when the CMH test rejects independence at ``alpha`` (accuracy tied to the mode);
    ``fisher_significant`` counts problems whose own Fisher test does.
    """
    if not scored:
        raise ValueError("no sampled responses to check")
    n = len(scored)
    by_mode = {mode: [row for row in scored if row.mode == mode] for mode in MODES}
    tables = mode_accuracy_tables(scored)
    fisher = {pid: _fisher(t) for pid, t in tables.items() if sum(t[0]) and sum(t[1])}
    cmh = cmh_test(list(tables.values()))
    report: dict[str, Any] = {
        "responses": n,
        "problems": len(tables),
        "format": sum(row.format for row in scored) / n,
        "accuracy": sum(row.correct for row in scored) / n,
        "perceptive_share": len(by_mode["perceptive"]) / n,
        "states_all_facts": sum(row.states_facts for row in scored) / n,
        "by_mode": {
            mode: {
                "responses": len(rows),
                "accuracy": (sum(r.correct for r in rows) / len(rows)) if rows else None,
                "format": (sum(r.format for r in rows) / len(rows)) if rows else None,
            }
            for mode, rows in by_mode.items()
        },
        "problems_with_both_modes": len(fisher),
        "fisher_significant": sum(p < alpha for p in fisher.values()),
        "fisher_min_p": min(fisher.values(), default=None),
        "cmh": cmh,
        "alpha": alpha,
    }
    report["tied"] = bool(cmh["p"] is not None and cmh["p"] < alpha)
    return report


def render_step0(report: Mapping[str, Any]) -> str:
    """The step-0 check as a few lines of text."""
    modes = report["by_mode"]
    cmh = report["cmh"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        f"step-0 check: {report['responses']} sampled responses over {report['problems']} problems",
        f"  format {report['format']:.3f}  accuracy {report['accuracy']:.3f}  "
        f"perceptive share {report['perceptive_share']:.3f}  "
        f"states every fact {report.get('states_all_facts', 0.0):.3f}",
    ]
    for mode in MODES:
        lines.append(
            f"  {mode:<10} responses {modes[mode]['responses']:>5}  accuracy {pct(modes[mode]['accuracy'])}  "
            f"format {pct(modes[mode]['format'])}"
        )
    lines.append(
        f"  accuracy by mode within problems: CMH chi2 {pct(cmh['statistic'])}, p {pct(cmh['p'])}, "
        f"pooled odds ratio {pct(cmh['pooled_odds_ratio'])} over {cmh['strata']} problems; Fisher p < "
        f"{report['alpha']} in {report['fisher_significant']} of {report['problems_with_both_modes']} "
        "problems"
        f" -> {'TIED to the mode' if report['tied'] else 'not tied to the mode'}"
    )
    copy = report.get("copy_check")
    if copy:
        lines.append(
            f"  copy check ({copy['split']}, greedy after the perceptive opener): states every fact in "
            f"{copy['states_every_fact']} of {copy['problems']} problems ({copy['rate']:.3f}), the ceiling "
            "of the evaluation's perception rate for this policy"
        )
    return "\n".join(lines)
