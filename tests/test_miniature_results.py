"""The miniature's results: the target's clauses, the step-0 gate, progress lines, the report page."""

from __future__ import annotations

import pytest

from perception_verl_demo.miniature import (
    ARMS,
    COMPARISONS,
    check_trained,
    comparisons_of,
    progress_line,
    render_report,
    step0_failures,
    target,
)


def _arms(base: float, acc_only: float, perception_r1: float) -> dict:
    rates = {"base": base, "acc_only": acc_only, "perception_r1": perception_r1}
    return {
        arm: {"problems": 50, "accuracy": 0.5, "perception_rate": rates[arm], "format": 1.0, "dump_step": 0}
        for arm in ARMS
    }


def _comparisons(perception: tuple[int, int, float], accuracy: tuple[int, int, float]) -> dict:
    def measure(b: int, c: int, p: float) -> dict:
        return {"b": b, "c": c, "p_exact": p, "n_pairs": 50}

    return {
        f"{a}_vs_{b}": {"perception": measure(*perception), "accuracy": measure(*accuracy)}
        for a, b in COMPARISONS
    }


def test_target_holds_only_when_every_clause_does() -> None:
    good = target(_arms(0.1, 0.05, 0.9), _comparisons((40, 0, 1e-9), (3, 4, 1.0)))
    assert good["holds"] and all(good["clauses"].values())
    low = target(_arms(0.1, 0.05, 0.7), _comparisons((30, 0, 1e-9), (3, 4, 1.0)))
    assert not low["holds"] and not low["clauses"]["perception_r1_perception_rate_at_least_0.8"]
    drift = target(_arms(0.1, 0.2, 0.9), _comparisons((40, 0, 1e-9), (3, 4, 1.0)))
    assert not drift["clauses"]["acc_only_perception_not_above_base"]
    worse = target(_arms(0.1, 0.05, 0.9), _comparisons((40, 0, 1e-9), (1, 12, 0.003)))
    assert not worse["clauses"]["perception_r1_accuracy_not_significantly_below_acc_only"]


def test_step0_failures_name_each_problem() -> None:
    report = {"format": 0.5, "perceptive_share": 0.7, "tied": True, "cmh": {"p": 0.001}}
    failures = step0_failures(report)
    assert len(failures) == 3 and "format 0.500" in failures[0] and "tied" in failures[2]
    assert step0_failures({"format": 0.9, "perceptive_share": 0.3, "tied": False, "cmh": {"p": 0.6}}) == []


def test_progress_line_summarises_verl_step_lines() -> None:
    line = (
        "step:3 - actor/pg_loss:0.1 - reward/score/mean:0.512 - reward/perception/mean:0.25 - "
        "timing_s/step:9.5"
    )
    assert (
        progress_line(line, "[4/12 arm]") == "[4/12 arm] verl step 3: score 0.512, perception 0.250, s 9.500"
    )
    assert progress_line("INFO some worker chatter", "[x]") is None
    assert progress_line("step-0 check passed", "[x]") == "[x] step-0 check passed"


def test_report_page_has_the_tables() -> None:
    arms = _arms(0.1, 0.05, 0.9)
    comparisons = _comparisons((40, 0, 1e-9), (3, 4, 1.0))
    page = render_report(
        {"seed": 0, "judge": "lexical", "arms": arms, "comparisons": comparisons,
         "target": target(arms, comparisons), "step0": None}
    )  # fmt: skip
    assert "| Perception-R1 | 0.500 | 0.900 | 1.000 | 0 |" in page
    assert "| Perception-R1 vs accuracy-only | 40 | 0 | 1.00e-09 | 3 | 4 | 1.000 |" in page
    assert "Target holds" in page


def test_one_arm_runs_compare_with_base_and_leave_the_target_unchecked() -> None:
    assert comparisons_of(["perception_r1"]) == (("perception_r1", "base"),)
    assert comparisons_of(["acc_only", "perception_r1"]) == COMPARISONS
    assert check_trained(["perception_r1", "acc_only"]) == ("acc_only", "perception_r1")
    for bad in ([], ["perception_r1", "perception_r1"], ["grpo"]):
        with pytest.raises(ValueError, match="one or both"):
            check_trained(bad)
    arms = {arm: row for arm, row in _arms(0.1, 0.05, 0.9).items() if arm != "acc_only"}
    comparisons = {"perception_r1_vs_base": _comparisons((9, 0, 0.004), (3, 4, 1.0))["perception_r1_vs_base"]}
    checked = target(arms, comparisons)
    assert checked["holds"] is None and checked["clauses"] == {} and "acc_only" in checked["unchecked"]
    page = render_report(
        {"seed": 0, "judge": "lexical", "arms": arms, "comparisons": comparisons, "target": checked,
         "step0": None}
    )  # fmt: skip
    assert "accuracy-only" not in page and "| Perception-R1 vs base policy | 9 | 0 |" in page
    assert "Target not checked" in page and "report_perception_r1" in page
