"""verl's own RewardLoopManager on local Ray (CPU) scoring real DataProto batches with our manager.

One Ray cluster for the module. Each test starts verl's reward-loop workers from a config composed
with the recipe's overrides, the way verl's trainer does, then checks what verl hands back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from perception_verl.data.annotations import parse_annotations
from perception_verl.integration.metrics import JUDGE_KEY, reward_metrics
from perception_verl.judge.lexical import lexical_verdicts
from perception_verl.rewards.total import score_response
from perception_verl.scorer import EXTRA_KEYS
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import (
    Sample,
    build_dataproto,
    compose_trainer_config,
    last_token_scores,
    local_ray,
    perception_reward_overrides,
    score_like_agent_loop,
    score_with_reward_loop,
    transfer_queue_session,
)

pytestmark = pytest.mark.ray

GOOD = (
    "<think>\nJKLM is a parallelogram, so JK = LM and 3f - 6 = 2f + 1.\n</think>\n"
    "<answer>\nSo f = 7 and \\boxed{7}.\n</answer>"
)
PARTIAL = "<think>\nSide JK = LM, so 3f - 6 = 2f + 1.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
VAGUE = "<think>\nOpposite sides are equal, so f = 7.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
WRONG = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{5}\n</answer>"
FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]

# one GRPO group ("a") where every answer is right and only perception differs, one mixed group ("b")
SAMPLES = [
    Sample("Find f. <image>", GOOD, "7", FACTS, uid="a"),
    Sample("Find f. <image>", PARTIAL, "7", FACTS, uid="a"),
    Sample("Find f. <image>", VAGUE, "7", FACTS, uid="a"),
    Sample("Find x. <image>", WRONG, "7", "<info1>JKLM is a parallelogram</info1>", uid="b"),
    Sample("Find x. <image>", GOOD, "7", None, uid="b", data_source="other/source"),
]


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def tokenizer(tokenizer_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(tokenizer_path))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    with local_ray(num_cpus=2, setup_hook="perception_verl.integration.register.setup"):
        yield


def expected_scores(samples: list[Sample]) -> list[float]:
    out = []
    for s in samples:
        facts = parse_annotations(s.annotations)
        verdicts = lexical_verdicts(facts, s.response) if facts else None
        out.append(score_response(s.response, s.ground_truth, verdicts, num_annotations=len(facts)).score)
    return out


def check_reward_loop_output(data: Any, out: Any, samples: list[Sample]) -> None:
    rm_scores = out.batch["rm_scores"]
    assert rm_scores.shape == data.batch["responses"].shape
    assert last_token_scores(data, rm_scores) == pytest.approx(expected_scores(samples))
    assert torch.count_nonzero(rm_scores).item() == sum(1 for v in expected_scores(samples) if v != 0)
    assert rm_scores.sum(dim=1).tolist() == pytest.approx(expected_scores(samples))
    assert out.meta_info["reward_extra_keys"] == [*EXTRA_KEYS, JUDGE_KEY]
    assert out.non_tensor_batch["score"].tolist() == pytest.approx(expected_scores(samples))


def test_lexical_judge_through_verl_reward_loop(
    ray_cluster: None, tokenizer_path: Path, tokenizer: Any
) -> None:
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    cfg = compose_trainer_config(
        perception_reward_overrides(tokenizer_path, {"judge": "lexical"}, num_workers=2)
    )
    data = build_dataproto(tokenizer, SAMPLES)
    out = score_with_reward_loop(cfg, data)
    check_reward_loop_output(data, out, SAMPLES)

    extras = out.non_tensor_batch
    perception = extras["perception"].tolist()
    assert extras["accuracy"].tolist()[:3] == [1.0, 1.0, 1.0]
    assert perception[0] > perception[1] > perception[2]
    assert extras["perception_excluded"].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]

    prompt_len = data.batch["prompts"].shape[1]
    response_mask = data.batch["attention_mask"][:, prompt_len:]
    advantages, _ = compute_grpo_outcome_advantage(
        token_level_rewards=out.batch["rm_scores"],
        response_mask=response_mask,
        index=data.non_tensor_batch["uid"],
    )
    per_sample = (advantages * response_mask).sum(dim=1) / response_mask.sum(dim=1)
    assert per_sample[0] > 0 and per_sample[2] < 0
    assert per_sample[0] > per_sample[1] > per_sample[2]

    metrics = reward_metrics(
        {k: extras[k] for k in out.meta_info["reward_extra_keys"]}, data.non_tensor_batch["data_source"]
    )
    assert metrics["reward/accuracy/mean"] == pytest.approx(0.8)
    assert metrics["reward/perception/mean"] == pytest.approx(np.mean(perception[:4]))
    assert metrics["reward/perception_excluded/share"] == pytest.approx(0.2)
    assert metrics["reward/judge_failed/rate"] == 0.0
    assert metrics["reward/other/source/accuracy/mean"] == 1.0
    assert metrics["reward/perception_judge/lexical"] == 1.0
    assert "reward/other/source/perception/mean" not in metrics


def test_sglang_judge_through_verl_reward_loop(
    ray_cluster: None, tokenizer_path: Path, tokenizer: Any
) -> None:
    data = build_dataproto(tokenizer, SAMPLES)
    with fake_sglang() as server:
        kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL}
        kwargs["constrained"] = True
        out = score_with_reward_loop(
            compose_trainer_config(perception_reward_overrides(tokenizer_path, kwargs)), data
        )
        assert server.routes["/health"] == 2  # one worker: checked as it is built, then as its judge starts
        assert server.routes["/v1/chat/completions"] == 4
    check_reward_loop_output(data, out, SAMPLES)
    assert out.non_tensor_batch["judge_failed"].tolist() == [0.0] * 5


def test_failures_and_missing_annotations_in_step_metrics(
    ray_cluster: None, tokenizer_path: Path, tokenizer: Any
) -> None:
    unannotated = [Sample(s.prompt, s.response, s.ground_truth, None, uid=s.uid) for s in SAMPLES]
    bare = score_with_reward_loop(
        compose_trainer_config(perception_reward_overrides(tokenizer_path, {"judge": "lexical"})),
        build_dataproto(tokenizer, unannotated),
    )
    bare_metrics = reward_metrics({k: bare.non_tensor_batch[k] for k in bare.meta_info["reward_extra_keys"]})
    assert bare_metrics["reward/perception_excluded/share"] == 1.0
    assert bare_metrics["reward/num_annotations/max"] == 0.0
    assert not any(k.startswith(("reward/perception/", "reward/judge_failed/")) for k in bare_metrics)

    annotated = SAMPLES[:4]
    with fake_sglang(fail_rate=1.0, fail_status=500) as server:
        kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL, "max_retries": 0}
        kwargs["judge_step_deadline_s"] = 2.0
        failed = score_with_reward_loop(
            compose_trainer_config(perception_reward_overrides(tokenizer_path, kwargs)),
            build_dataproto(tokenizer, annotated),
        )
    metrics = reward_metrics({k: failed.non_tensor_batch[k] for k in failed.meta_info["reward_extra_keys"]})
    assert metrics["reward/judge_failed/rate"] == 1.0 and metrics["reward/judge_failed/count"] == 4.0
    assert metrics["reward/perception_excluded/share"] == 1.0
    no_perception = [score_response(s.response, s.ground_truth, None).score for s in annotated]
    assert failed.batch["rm_scores"].sum(dim=1).tolist() == pytest.approx(no_perception)


def test_registered_name_through_ray_setup_hook(
    ray_cluster: None, tokenizer_path: Path, tokenizer: Any
) -> None:
    import perception_verl.integration.register  # noqa: F401  (the driver resolves the name too)

    overrides = [
        "reward.reward_manager.source=register",
        "reward.reward_manager.name=perception",
        "reward.num_workers=1",
        "+reward.reward_kwargs.judge=lexical",
        f"actor_rollout_ref.model.path={tokenizer_path}",
    ]
    data = build_dataproto(tokenizer, SAMPLES[:2])
    out = score_with_reward_loop(compose_trainer_config(overrides), data)
    check_reward_loop_output(data, out, SAMPLES[:2])


def _rollout_done_trainer(base: type, batch: Any, *, streamed: bool) -> type:
    """``base`` with rollout, reward and training already done (stand-ins for the GPU workers).

    ``prepare_step`` submits nothing and ``_step_once`` hands back ``batch``, already in TransferQueue;
    ``get_reward_handles`` says whether rewards were streamed with rollout or computed colocated.
    """

    class RolloutDone(base):  # type: ignore[misc, valid-type]
        def prepare_step(self) -> dict:
            return {}

        def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int) -> Any:
            return batch

        def get_reward_handles(self) -> Any:
            return ["reward-loop-worker"] if streamed else None

    return RolloutDone


@pytest.mark.parametrize("route", ["streamed", "colocated"])
def test_v1_trainer_step_metrics_include_reward_components(
    ray_cluster: None, tokenizer_path: Path, tokenizer: Any, route: str
) -> None:
    """Rewards scored by verl's reward loop, kept in TransferQueue by either route, logged by the v1 trainer.

    The trainer is verl's ``PPOTrainerSync`` with our public ``step`` extension; verl's own ``step``
    (metrics aggregation) and ``_compute_metrics`` run unchanged, in the order ``fit`` runs them.
    """
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
    from verl.trainer.ppo.v1 import PPOTrainerSync

    from perception_verl.integration.step_metrics import with_reward_step_metrics

    cfg = compose_trainer_config(
        [
            *perception_reward_overrides(tokenizer_path, {"judge": "lexical"}),
            "algorithm.adv_estimator=grpo",
            "trainer.n_gpus_per_node=1",
            "transfer_queue.enable=True",
            "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        ]
    )
    data = build_dataproto(tokenizer, SAMPLES)
    results = score_like_agent_loop(cfg, data)
    scores = [r["reward_score"] for r in results]
    assert scores == pytest.approx(expected_scores(SAMPLES))

    prompt_len = data.batch["prompts"].shape[1]
    response_mask = data.batch["attention_mask"][:, prompt_len:]
    rm_scores = torch.zeros_like(response_mask, dtype=torch.float32)
    lengths = response_mask.sum(dim=1)
    rm_scores[torch.arange(len(data)), lengths - 1] = torch.tensor(scores)
    advantages, returns = compute_grpo_outcome_advantage(
        token_level_rewards=rm_scores, response_mask=response_mask, index=data.non_tensor_batch["uid"]
    )

    metrics: dict[str, Any] = {}
    with transfer_queue_session(cfg) as tq:
        keys, tags = [], []
        for i, result in enumerate(results):
            n = int(lengths[i])
            key, tag = f"{SAMPLES[i].uid}_{i}_0", {"min_global_steps": 0, "max_global_steps": 0}
            fields = {
                "prompts": data.batch["prompts"][i],
                "responses": data.batch["responses"][i, :n],
                "response_mask": response_mask[i, :n],
                "rm_scores": rm_scores[i, :n],
                "advantages": advantages[i, :n],
                "returns": returns[i, :n],
                "num_turns": 1,
                "data_source": SAMPLES[i].data_source,
            }
            if route == "streamed":  # verl's agent loop: the extras ride in extra_fields
                fields["extra_fields"] = {"reward_extra_info": result["reward_extra_info"]}
            else:  # verl's _compute_reward_colocate: one field per reward_extra_keys entry
                fields["extra_fields"] = {}
                fields.update(result["reward_extra_info"])
            tq.kv_put(key=key, partition_id="train", fields=fields, tag=tag)
            keys.append(key)
            tags.append(tag)
        batch = KVBatchMeta(keys=keys, tags=tags, partition_id="train")
        done_cls = _rollout_done_trainer(PPOTrainerSync, batch, streamed=route == "streamed")
        trainer_cls = with_reward_step_metrics(done_cls)
        trainer = trainer_cls(cfg)
        trainer._init_resource_pool_mgr()
        timing_raw = {"step": 1.0, "gen": 0.5}
        stepped = trainer.step(metrics, timing_raw)
        trainer._compute_metrics(stepped, metrics, timing_raw, global_steps=1, epoch=0)

    assert metrics["critic/score/mean"] == pytest.approx(np.mean(scores))  # verl's own metrics still there
    assert metrics["reward/score/mean"] == pytest.approx(np.mean(scores))
    assert metrics["reward/accuracy/mean"] == pytest.approx(0.8)
    perception = [r["reward_extra_info"]["perception"] for r in results[:4]]
    assert metrics["reward/perception/mean"] == pytest.approx(np.mean(perception))
    assert metrics["reward/perception_excluded/share"] == pytest.approx(0.2)
    assert metrics["reward/judge_failed/rate"] == 0.0
    assert metrics["reward/other/source/accuracy/mean"] == 1.0
    assert metrics["reward/perception_judge/lexical"] == 1.0  # the metric set names its judge
