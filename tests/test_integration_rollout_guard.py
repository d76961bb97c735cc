"""The first-step check that verl's rollout engine and actor agree (image-blind rollouts among the causes)."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from perception_verl.config import RewardConfigError, from_kwargs
from perception_verl.integration.rollout_guard import METRICS, RolloutMismatchError, disagreement
from perception_verl.integration.step_metrics import check_rollout_agreement, rollout_mismatch_bound

KL, DIFF = METRICS
# Seen on the CPU twin: k3_kl 1e-5 and a probability gap of 0.0015 with load_format=auto; image-blind
# rollouts gave k3_kl of about 4.
AGREEING = {KL: 1e-5, DIFF: 0.0015}
IMAGE_BLIND = {KL: 3.95, DIFF: 0.04}


def test_agreeing_probabilities_pass() -> None:
    assert disagreement(AGREEING, 0.1) is None
    check_rollout_agreement(AGREEING, 0.1, first=True)


def test_a_first_step_disagreement_stops_the_run_naming_the_cause_and_the_option() -> None:
    with pytest.raises(RolloutMismatchError) as caught:
        check_rollout_agreement(IMAGE_BLIND, 0.1, first=True)
    message = str(caught.value)
    assert "rollout_corr/k3_kl = 3.95 > 0.1" in message
    assert "load_format=auto" in message and "image-blind" in message
    assert "reward.reward_kwargs.rollout_mismatch_max" in message


def test_a_later_disagreement_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_rollout_agreement(IMAGE_BLIND, 0.1, first=False)
    assert "disagree" in caplog.text


def test_the_probability_gap_is_checked_where_no_kl_is_logged() -> None:
    assert disagreement({DIFF: 0.3}, 0.1) is not None
    assert disagreement({DIFF: 0.05}, 0.1) is None


def test_null_disables_and_a_missing_metric_is_said(caplog: pytest.LogCaptureFixture) -> None:
    check_rollout_agreement(IMAGE_BLIND, None, first=True)
    with caplog.at_level(logging.WARNING):
        check_rollout_agreement({}, 0.1, first=True)
    assert "calculate_log_probs" in caplog.text


def test_the_bound_comes_from_reward_kwargs() -> None:
    assert rollout_mismatch_bound(OmegaConf.create({"reward": {"reward_kwargs": {}}})) == 0.1
    config = OmegaConf.create({"reward": {"reward_kwargs": {"rollout_mismatch_max": 0.25}}})
    assert rollout_mismatch_bound(config) == 0.25
    off = OmegaConf.create({"reward": {"reward_kwargs": {"rollout_mismatch_max": None}}})
    assert rollout_mismatch_bound(off) is None


def test_the_manager_accepts_the_option_and_refuses_a_bad_value() -> None:
    assert from_kwargs({"judge": "lexical", "rollout_mismatch_max": 0.2}).rollout_mismatch_max == 0.2
    assert from_kwargs({"judge": "lexical", "rollout_mismatch_max": None}).rollout_mismatch_max is None
    with pytest.raises(RewardConfigError, match="rollout_mismatch_max"):
        from_kwargs({"judge": "lexical", "rollout_mismatch_max": -1})
