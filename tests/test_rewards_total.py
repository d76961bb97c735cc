"""Total reward: the weighted sum, its components, weights validation, metrics."""

from __future__ import annotations

import math

import pytest

import perception_verl.rewards as rewards
from perception_verl.rewards import RewardBreakdown, RewardWeights, score_response

GOOD = (
    "<think>\nJKLM is a parallelogram, so angle K is 71.\n</think>\n<answer>\n\\boxed{71^\\circ}\n</answer>"
)


def test_package_exports_the_contract():
    for name in (
        "AccuracyResult",
        "RewardBreakdown",
        "RewardWeights",
        "accuracy_reward",
        "extract_answer",
        "format_reward",
        "perception_reward",
        "repetition_penalty",
        "score_response",
    ):
        assert hasattr(rewards, name)


def test_default_weights_are_the_reference_values():
    assert RewardWeights() == RewardWeights(0.9, 0.1, 0.7, 1.0, 20, 2.0)


def test_correct_formatted_with_perception_by_hand():
    result = score_response(GOOD, "71", (1, 0, 1, 1))
    # 0.9 * 1 + 0.1 * 1 + 0.7 * 0.75 + 1.0 * 0
    assert result.score == pytest.approx(1.525)
    assert result == RewardBreakdown(
        score=result.score,
        accuracy=1.0,
        format=1.0,
        perception=0.75,
        perception_excluded=False,
        repetition=0.0,
        num_annotations=4,
        accuracy_reason="correct",
    )


def test_without_verdicts_perception_is_left_out():
    result = score_response(GOOD, "71", None)
    assert result.score == pytest.approx(1.0)
    assert result.perception is None
    assert result.perception_excluded
    assert result.num_annotations == 0
    assert score_response(GOOD, "71", []).perception_excluded


def test_failed_judge_keeps_the_annotation_count():
    result = score_response(GOOD, "71", None, num_annotations=3)
    assert (result.perception_excluded, result.num_annotations) == (True, 3)


def test_wrong_unformatted_repetitive_response_by_hand():
    response = "blah " * 40 + "\\boxed{70}"  # 41 words, 20-grams: 22 total, 2 distinct
    result = score_response(response, "71", (0, 0))
    repetition = -2.0 * (1 - 2 / 22)
    assert result.repetition == pytest.approx(repetition)
    assert (result.accuracy, result.format, result.perception) == (0.0, 0.0, 0.0)
    assert result.score == pytest.approx(repetition)
    assert result.accuracy_reason == "mismatch"


def test_custom_weights_by_hand():
    weights = RewardWeights(
        accuracy=1.0, format=0.5, perception=0.2, repetition=0.5, repetition_n=1, repetition_max_penalty=1.0
    )
    response = "<think>\nok ok\n</think>\n<answer>\n\\boxed{3}\n</answer>"
    words = response.lower().split()
    repetition = -1.0 * (1 - len(set(words)) / len(words))
    result = score_response(response, "3", (1, 0), weights)
    assert result.repetition == pytest.approx(repetition)
    assert result.score == pytest.approx(1.0 + 0.5 + 0.2 * 0.5 + 0.5 * repetition)


def test_verdict_count_must_match_num_annotations():
    with pytest.raises(ValueError, match="2 verdicts for 3 annotations"):
        score_response(GOOD, "71", (1, 0), num_annotations=3)


def test_non_binary_verdicts_raise():
    with pytest.raises(ValueError, match="0 or 1"):
        score_response(GOOD, "71", (1, 2))


def as_metrics(result: RewardBreakdown) -> dict[str, float]:
    """Every component as a float, as a metrics logger would take them (excluded perception -> 0.0 + flag)."""
    return {
        "score": float(result.score),
        "accuracy": float(result.accuracy),
        "format": float(result.format),
        "perception": 0.0 if result.perception is None else float(result.perception),
        "perception_excluded": 1.0 if result.perception_excluded else 0.0,
        "repetition": float(result.repetition),
        "num_annotations": float(result.num_annotations),
    }


def test_as_metrics_is_all_floats():
    metrics = as_metrics(score_response(GOOD, "71", (1, 1)))
    assert metrics == {
        "score": pytest.approx(1.7),
        "accuracy": 1.0,
        "format": 1.0,
        "perception": 1.0,
        "perception_excluded": 0.0,
        "repetition": 0.0,
        "num_annotations": 2.0,
    }
    assert all(type(value) is float for value in metrics.values())


def test_as_metrics_when_excluded():
    metrics = as_metrics(score_response("", "71", None, num_annotations=2))
    assert metrics["perception"] == 0.0
    assert metrics["perception_excluded"] == 1.0
    assert metrics["num_annotations"] == 2.0
    assert all(type(value) is float and math.isfinite(value) for value in metrics.values())


def test_hostile_responses_still_score():
    for response in ["", "\ud800" * 100, "\x00\x1b" * 1000, "<answer>" * 5000, "word " * 10_000]:
        result = score_response(response, "3", (1,))
        assert math.isfinite(result.score)
        assert result.accuracy == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accuracy": -0.1},
        {"format": math.nan},
        {"perception": math.inf},
        {"repetition": "1"},
        {"accuracy": True},
        {"repetition_max_penalty": -2.0},
        {"repetition_n": 0},
        {"repetition_n": 2.5},
        {"repetition_n": True},
    ],
)
def test_invalid_weights_are_rejected(kwargs):
    with pytest.raises(ValueError, match="reward weight"):
        RewardWeights(**kwargs)


def test_zero_weights_are_allowed():
    weights = RewardWeights(accuracy=0, format=0, perception=0, repetition=0)
    assert score_response(GOOD, "71", (1,), weights).score == 0.0
