"""reward_metrics: hand-checkable step metrics from reward_extra_info arrays."""

from __future__ import annotations

import numpy as np
import pytest

from perception_verl.integration.metrics import reward_metrics


def batch(**overrides: list) -> dict[str, np.ndarray]:
    base = {
        "score": [1.7, 1.0, 0.1, 0.35],
        "accuracy": [1.0, 1.0, 0.0, 0.0],
        "format": [1.0, 1.0, 1.0, 0.0],
        "perception": [1.0, 0.0, 0.0, 0.5],
        "perception_excluded": [0.0, 1.0, 1.0, 0.0],
        "repetition": [0.0, 0.0, -0.5, 0.0],
        "num_annotations": [2.0, 0.0, 3.0, 2.0],
        "judge_failed": [0.0, 0.0, 1.0, 0.0],
        "judge_latency_s": [0.2, 0.0, 1.0, 0.0],
        "judge_cached": [0.0, 0.0, 0.0, 1.0],
    }
    base.update(overrides)
    return {k: np.array(v) for k, v in base.items()}


def test_hand_checked_values() -> None:
    m = reward_metrics(batch())
    assert m["reward/accuracy/mean"] == 0.5
    assert m["reward/accuracy/std"] == 0.5
    assert (m["reward/score/min"], m["reward/score/max"]) == (0.1, 1.7)
    assert m["reward/repetition/mean"] == -0.125
    # perception only over rows whose term counted (rows 0 and 3)
    assert m["reward/perception/mean"] == 0.75
    assert (m["reward/perception/min"], m["reward/perception/max"]) == (0.5, 1.0)
    assert m["reward/perception_excluded/share"] == 0.5
    # the judge was needed by rows 0, 2, 3 (annotated); row 2 failed
    assert m["reward/judge_failed/rate"] == pytest.approx(1 / 3)
    assert m["reward/judge_failed/count"] == 1.0
    assert m["reward/judge_cached/share"] == pytest.approx(1 / 3)
    # latency over judge calls that were not cache hits: rows 0 and 2
    assert m["reward/judge_latency_s/mean"] == pytest.approx(0.6)
    assert m["reward/judge_latency_s/p50"] == pytest.approx(0.6)
    assert m["reward/judge_latency_s/p99"] == pytest.approx(0.992)
    assert m["reward/judge_latency_s/max"] == 1.0
    assert all(isinstance(v, float) for v in m.values())


def test_all_rows_without_annotations() -> None:
    m = reward_metrics(
        batch(
            perception=[0.0] * 4,
            perception_excluded=[1.0] * 4,
            num_annotations=[0.0] * 4,
            judge_failed=[0.0] * 4,
            judge_latency_s=[0.0] * 4,
            judge_cached=[0.0] * 4,
        )
    )
    assert m["reward/perception_excluded/share"] == 1.0
    assert not [k for k in m if k.startswith(("reward/perception/", "reward/judge_"))]
    assert m["reward/accuracy/mean"] == 0.5


def test_every_judge_call_failed() -> None:
    m = reward_metrics(
        batch(
            perception=[0.0] * 4,
            perception_excluded=[1.0] * 4,
            num_annotations=[2.0] * 4,
            judge_failed=[1.0] * 4,
            judge_cached=[0.0] * 4,
        )
    )
    assert m["reward/judge_failed/rate"] == 1.0 and m["reward/judge_failed/count"] == 4.0
    assert m["reward/perception_excluded/share"] == 1.0
    assert "reward/perception/mean" not in m


def test_per_data_source_only_when_several() -> None:
    single = reward_metrics(batch(), data_sources=["geo"] * 4)
    assert not [k for k in single if k.startswith("reward/geo/")]
    several = reward_metrics(batch(), data_sources=np.array(["geo", "geo", "mv", "mv"], dtype=object))
    assert several["reward/geo/accuracy/mean"] == 1.0
    assert several["reward/mv/accuracy/mean"] == 0.0
    assert several["reward/mv/judge_failed/rate"] == 0.5
    assert several["reward/geo/perception/mean"] == 1.0
    assert several["reward/accuracy/mean"] == 0.5


def test_lists_with_gaps_and_other_managers_keys() -> None:
    m = reward_metrics({"accuracy": [1.0, None, 0.0], "acc": [1, 1, 0], "pred": ["7", "5", "x"]})
    assert m == {
        "reward/accuracy/mean": 0.5,
        "reward/accuracy/std": 0.5,
        "reward/accuracy/min": 0.0,
        "reward/accuracy/max": 1.0,
    }
    assert reward_metrics({}) == {}


def test_mismatched_lengths_fail() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        reward_metrics({"accuracy": [1.0, 0.0], "format": [1.0]})
    with pytest.raises(ValueError, match="data_sources has 1 entries for 2 samples"):
        reward_metrics({"accuracy": [1.0, 0.0]}, data_sources=["a"])


def test_accuracy_timeouts_are_counted() -> None:
    from perception_verl.integration.metrics import reward_metrics

    metrics = reward_metrics({"accuracy": [0.0, 1.0, 0.0], "accuracy_timed_out": [1.0, 0.0, 1.0]})
    assert metrics["reward/accuracy_timed_out/count"] == 2.0


def test_judge_token_usage_is_summed_and_the_cached_share_derived() -> None:
    m = reward_metrics(
        {
            "num_annotations": [2.0, 2.0, 0.0],
            "judge_truncated": [0.0, 1.0, 0.0],
            "judge_prompt_tokens": [700.0, 300.0, 0.0],
            "judge_cached_tokens": [600.0, 200.0, 0.0],
            "judge_completion_tokens": [30.0, 64.0, 0.0],
        }
    )
    assert m["reward/judge_prompt_tokens/sum"] == 1000.0
    assert m["reward/judge_cached_tokens/sum"] == 800.0
    assert m["reward/judge_completion_tokens/sum"] == 94.0
    assert m["reward/judge_cached_tokens/share"] == pytest.approx(0.8)
    assert m["reward/judge_truncated/count"] == 1.0


def test_the_judge_is_named_in_a_metric_without_its_urls() -> None:
    label = "sglang:Qwen/Qwen2.5-32B-Instruct-AWQ@http://judge-0:30000,http://judge-1:30000"
    metrics = reward_metrics({"score": [1.0, 0.5, 0.0], "perception_judge": [label, label, None]})
    named = {k: v for k, v in metrics.items() if k.startswith("reward/perception_judge/")}
    assert named == {"reward/perception_judge/sglang_Qwen_Qwen2.5-32B-Instruct-AWQ": pytest.approx(2 / 3)}
    assert metrics["reward/score/mean"] == pytest.approx(0.5)
    assert reward_metrics({"perception_judge": ["lexical"]}) == {"reward/perception_judge/lexical": 1.0}
