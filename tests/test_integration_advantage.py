"""Group-consistent perception through verl's own GRPO advantage code (compute_advantage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from perception_verl.integration.advantage import (
    EXCLUDED_GROUPS_METRIC,
    apply_group_consistent_perception,
    group_consistent_scores,
)
from perception_verl.integration.manager import PerceptionRewardManager
from perception_verl.rewards.total import score_response
from tests.support.fake_sglang import JUDGE_MODEL, judge_responder
from tests.support.loopback import LoopbackServer
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto, score_all

FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]
BOTH = "<think>\nJKLM is a parallelogram and JK = 3f - 6.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
ONE = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
NONE = "<think>\nOpposite sides are equal.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
WRONG = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{5}\n</answer>"
UNLUCKY = BOTH.replace("3f - 6.", "3f - 6, unlucky.")

SAMPLES = [
    *(Sample("Find f. <image>", text, "7", FACTS, uid="a") for text in (BOTH, ONE, UNLUCKY, WRONG)),
    *(Sample("Find g. <image>", text, "7", FACTS, uid="b") for text in (BOTH, ONE, NONE, WRONG)),
]


def failing_for_unlucky(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """The judge server fails (HTTP 500) for the response that says "unlucky", answers the others."""
    if "unlucky" in str(messages):
        raise RuntimeError("judge crashed on this one")
    return judge_responder(messages, body)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def scored_batch(tokenizer: Any) -> Any:
    """The batch as verl's trainer holds it after the reward step: rm_scores plus the reward extras."""
    from verl.trainer.ppo.ray_trainer import compute_response_mask

    data = build_dataproto(tokenizer, SAMPLES)
    with LoopbackServer(failing_for_unlucky, model=JUDGE_MODEL) as server:
        kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL, "max_retries": 0}
        kwargs["judge_step_deadline_s"] = 2.0
        config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}, "trainer": {"use_v1": True}})
        manager = PerceptionRewardManager(config, tokenizer)

        outputs = score_all(manager, data)
    scores = [out["reward_score"] for out in outputs]
    data.batch["token_level_rewards"] = PerceptionRewardManager.assemble_rm_scores(data, scores)
    data.batch["response_mask"] = compute_response_mask(data)
    for key in outputs[0]["reward_extra_info"]:
        data.non_tensor_batch[key] = np.array([out["reward_extra_info"][key] for out in outputs])
    return data


def grpo(data: Any, rewards: torch.Tensor) -> torch.Tensor:
    """verl's GRPO advantage (compute_advantage) of ``rewards`` on ``data``'s groups, one value per row."""
    from verl.trainer.ppo.core_algos import AdvantageEstimator
    from verl.trainer.ppo.ray_trainer import compute_advantage

    copy = data.select(deepcopy=True)
    copy.batch["token_level_rewards"] = rewards
    out = compute_advantage(copy, AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=True)
    mask = out.batch["response_mask"]
    return (out.batch["advantages"] * mask).sum(dim=1) / mask.sum(dim=1)


def on_last_token(data: Any, scores: list[float]) -> torch.Tensor:
    return PerceptionRewardManager.assemble_rm_scores(data, scores)


def test_a_failed_judge_call_removes_perception_from_its_whole_group(tokenizer: Any) -> None:
    data = scored_batch(tokenizer)
    failed = data.non_tensor_batch["judge_failed"].tolist()
    assert failed == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    before = grpo(data, data.batch["token_level_rewards"])

    metrics = apply_group_consistent_perception(data, weight=0.7)
    after = grpo(data, data.batch["token_level_rewards"])

    assert metrics == {EXCLUDED_GROUPS_METRIC: 1.0}
    no_perception = [score_response(s.response, s.ground_truth, None).score for s in SAMPLES[:4]]
    as_judged = data.batch["token_level_rewards"].sum(dim=1).tolist()[4:]
    expected = grpo(data, on_last_token(data, [*no_perception, *as_judged]))
    assert after.tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    # Group "a": the unlucky rollout now ranks with BOTH and ONE (all correct), above WRONG; before, its
    # missing perception counted as 0 and put it below both.
    ranked, judged_as_zero = after.tolist(), before.tolist()
    assert ranked[0] == pytest.approx(ranked[2], abs=1e-5) and ranked[1] == pytest.approx(ranked[2], abs=1e-5)
    assert ranked[3] < ranked[2]
    assert judged_as_zero[2] < judged_as_zero[1] < judged_as_zero[0]
    # Group "b" (every verdict in) is untouched.
    assert after[4:].tolist() == pytest.approx(before[4:].tolist(), abs=1e-6)


def test_group_consistent_scores_pure() -> None:
    scores, excluded = group_consistent_scores(
        [1.7, 1.35, 1.0, 1.0, 1.7],
        [1.0, 0.5, 0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 1.0, 0.0],
        ["a", "a", "a", "b", "c"],
        0.7,
    )
    assert scores.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.7]) and excluded == 1


def test_verl_passes_registered_estimators_no_reward_extras() -> None:
    """Pin: why this is a batch transform and not a registered estimator (verl 0.9.1)."""
    from verl import DataProto
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est
    from verl.trainer.ppo.ray_trainer import compute_advantage

    seen: dict[str, Any] = {}

    def probe(**kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        seen.update(kwargs)
        zeros = torch.zeros_like(kwargs["token_level_rewards"])
        return zeros, zeros

    register_adv_est("perception_probe")(probe)
    try:
        data = DataProto.from_dict(
            tensors={"token_level_rewards": torch.ones(2, 3), "response_mask": torch.ones(2, 3)},
            non_tensors={"uid": np.array(["a", "a"], dtype=object), "perception": np.array([1.0, 0.0])},
        )
        compute_advantage(data, "perception_probe", config=OmegaConf.create({}))
    finally:
        ADV_ESTIMATOR_REGISTRY.pop("perception_probe", None)
    assert set(seen) == {"token_level_rewards", "response_mask", "config", "index"}, (
        "verl now passes more to registered estimators; group-consistent perception can become one"
    )
