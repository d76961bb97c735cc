"""Group-consistent perception in verl's v1 trainer: the replay-buffer wrapper, through verl's real step.

If a test in the "pins" group fails after a verl upgrade, perception_verl/integration/group_sampling.py
relies on a sampling path that changed: revisit it before training with that verl.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from perception_verl import main_ppo
from perception_verl.integration.advantage import EXCLUDED_GROUPS_METRIC
from perception_verl.integration.group_sampling import (
    COLOCATED_ROUTE_ERROR,
    PARTIAL_GROUPS_METRIC,
    GroupConsistentSampler,
    perception_weight,
    rewrite_batch,
    sessions_per_group,
    uses_perception_manager,
    with_group_consistent_perception,
)
from perception_verl.rewards.total import score_response
from tests.support.fake_sglang import JUDGE_MODEL, judge_responder
from tests.support.loopback import LoopbackServer
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import (
    Sample,
    build_dataproto,
    compose_trainer_config,
    local_ray,
    perception_reward_overrides,
    stop_reward_loop,
    transfer_queue_session,
)

FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]
BOTH = "<think>\nJKLM is a parallelogram and JK = 3f - 6.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
ONE = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
NONE = "<think>\nOpposite sides are equal.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
WRONG = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{5}\n</answer>"
UNLUCKY = BOTH.replace("3f - 6.", "3f - 6, unlucky.")

# Group "ga": the judge fails for UNLUCKY. Group "gb": every verdict in; its third session's rollout
# failed (not stored), so the group has 3 of rollout.n=4 sessions.
SAMPLES = [
    *(Sample("Find f. <image>", text, "7", FACTS, uid="ga") for text in (BOTH, ONE, UNLUCKY, WRONG)),
    *(Sample("Find g. <image>", text, "7", FACTS, uid="gb") for text in (BOTH, ONE, NONE, WRONG)),
]
STORED = [0, 1, 2, 3, 4, 5, 7]
WEIGHT = 0.7


def failing_for_unlucky(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """The judge server fails (HTTP 500) for the response that says "unlucky", answers the others."""
    if "unlucky" in str(messages):
        raise RuntimeError("judge crashed on this one")
    return judge_responder(messages, body)


def key_of(i: int) -> str:
    """verl's trajectory key ``{uid}_{session_id}_{index}`` for sample ``i`` (session = place in group)."""
    return f"{SAMPLES[i].uid}_{i % 4}_0"


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def tokenizer(tokenizer_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(tokenizer_path))


def row_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> list[float]:
    return ((advantages * mask).sum(dim=1) / mask.sum(dim=1)).tolist()


def grpo_of(scores: list[float], lengths: list[int], uids: list[str]) -> list[float]:
    """verl's GRPO outcome advantage of ``scores`` (one per row, on its last token), one value per row."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    mask = torch.zeros(len(scores), max(lengths))
    rewards = torch.zeros_like(mask)
    for row, (score, n) in enumerate(zip(scores, lengths, strict=True)):
        mask[row, :n] = 1
        rewards[row, n - 1] = score
    import numpy as np

    advantages, _ = compute_grpo_outcome_advantage(rewards, mask, np.array(uids, dtype=object))
    return row_advantages(advantages, mask)


def _workers_done(trainer_cls: type) -> type:
    """``trainer_cls`` with stand-ins for what needs GPUs: rollout already done, no actor to run.

    verl's own ``step``, ``_step_once``, replay buffer ``sample`` and ``_compute_advantage`` run.
    """

    class WorkersDone(trainer_cls):  # type: ignore[misc, valid-type]
        def prepare_step(self) -> dict:  # the rollout is done: its groups are in TransferQueue
            return {}

        def on_sample_end(self) -> None:  # no rollout replicas to put to sleep
            return None

        def _balance_batch(self, batch: Any, metrics: dict, **kwargs: Any) -> Any:  # one DP rank
            return batch

        def _compute_old_log_prob(self, batch: Any, metrics: dict) -> Any:  # no actor workers
            return batch

        def _update_actor(self, batch: Any, metrics: dict) -> Any:
            return batch

    return WorkersDone


@pytest.mark.ray
def test_v1_step_gives_a_failed_groups_members_the_perception_excluded_advantage(
    tokenizer_path: Path, tokenizer: Any
) -> None:
    """Scored by verl's reward loop (HTTP judge failing once), sampled by verl's replay buffer through
    our wrapper, advantages by verl's ``_compute_advantage``: group "ga" is ranked without perception,
    group "gb" exactly as judged, and the step metrics count the excluded group."""
    import ray
    from verl.experimental.reward_loop import RewardLoopManager

    data = build_dataproto(tokenizer, SAMPLES)
    prompt_len = data.batch["prompts"].shape[1]
    response_mask = data.batch["attention_mask"][:, prompt_len:]
    lengths = response_mask.sum(dim=1).tolist()
    metrics: dict[str, Any] = {}
    with (
        local_ray(num_cpus=2, setup_hook="perception_verl.integration.register.setup"),
        LoopbackServer(failing_for_unlucky, model=JUDGE_MODEL) as server,
    ):
        kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL, "max_retries": 0}
        kwargs.update(judge_step_deadline_s=2.0, weights={"perception": WEIGHT})
        cfg = compose_trainer_config(
            [
                *perception_reward_overrides(tokenizer_path, kwargs),
                "algorithm.adv_estimator=grpo",
                "actor_rollout_ref.rollout.n=4",
                "data.train_batch_size=2",
                "trainer.n_gpus_per_node=1",
                "transfer_queue.enable=True",
                "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
            ]
        )
        reward_loop = RewardLoopManager(cfg)
        try:
            handles = reward_loop.reward_loop_worker_handles
            results = ray.get([handles[0].compute_score.remote(data[i : i + 1]) for i in range(len(data))])
            with transfer_queue_session(cfg) as tq:
                for uid, status in (("ga", "finished"), ("gb", "failure")):
                    tag = {"is_prompt": True, "status": status, "global_steps": 1}
                    tq.kv_put(key=uid, partition_id="train", tag=tag)
                for i in STORED:  # what verl's agent loop writes for each trajectory
                    n = int(lengths[i])
                    rm_scores = torch.zeros(n)
                    rm_scores[-1] = results[i]["reward_score"]
                    fields = {
                        "uid": SAMPLES[i].uid,
                        "prompts": data.batch["prompts"][i],
                        "responses": data.batch["responses"][i, :n],
                        "response_mask": response_mask[i, :n],
                        "rm_scores": rm_scores,
                        "extra_fields": {"reward_extra_info": results[i]["reward_extra_info"]},
                        "num_turns": 1,
                        "data_source": SAMPLES[i].data_source,
                    }
                    tag = {"status": "success", "seq_len": prompt_len + n, "global_steps": 1}
                    tq.kv_put(key=key_of(i), partition_id="train", fields=fields, tag=tag)

                trainer = _workers_done(main_ppo.trainer_class(cfg))(cfg)
                trainer.reward_loop_manager = reward_loop
                trainer.global_steps = 1
                stepped = trainer.step(metrics, {})
                keys = [key_of(i) for i in STORED]
                assert sorted(stepped.keys) == sorted(keys)  # whole groups, the failed session aside
                fields = ["rm_scores", "advantages"]
                stored = tq.kv_batch_get(keys=keys, partition_id="train", select_fields=fields)
                trained_scores = [float(row.sum()) for row in stored["rm_scores"].unbind()]
                advantages = [float(row.mean()) for row in stored["advantages"].unbind()]
        finally:
            stop_reward_loop(reward_loop)

    judged = [results[i]["reward_score"] for i in STORED]
    failed = [results[i]["reward_extra_info"]["judge_failed"] for i in STORED]
    assert failed == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    no_perception = [score_response(SAMPLES[i].response, "7", None).score for i in STORED[:4]]
    assert trained_scores == pytest.approx([*no_perception, *judged[4:]], abs=1e-6)
    rows = [int(lengths[i]) for i in STORED]
    uids = [SAMPLES[i].uid for i in STORED]
    expected = grpo_of([*no_perception, *judged[4:]], rows, uids)
    as_judged = grpo_of(judged, rows, uids)
    assert advantages == pytest.approx(expected, abs=1e-5)
    # "ga": the unlucky rollout ranks with BOTH and ONE (all correct), above WRONG; as judged, its
    # missing perception counted as 0 and put it below both.
    assert advantages[0] == pytest.approx(advantages[2], abs=1e-5) == pytest.approx(advantages[1], abs=1e-5)
    assert advantages[3] < advantages[2] and as_judged[2] < as_judged[1] < as_judged[0]
    assert advantages[4:] == pytest.approx(as_judged[4:], abs=1e-6)  # "gb" untouched
    assert metrics[EXCLUDED_GROUPS_METRIC] == 1.0
    assert metrics[PARTIAL_GROUPS_METRIC] == 1.0
    assert metrics["reward/judge_failed/count"] == 1.0  # the reward step metrics are still there


# ---------------------------------------------------------------- units (no Ray)


class FakeStore:
    """TransferQueue's kv_batch_get/kv_batch_put over a dict (rows of ``rm_scores``, ``uid``, extras)."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows
        self.puts: list[list[str]] = []

    def get(self, keys: list[str], partition_id: str, select_fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {f: [self.rows[k][f] for k in keys] for f in select_fields if f != "rm_scores"}
        if "rm_scores" in select_fields:
            out["rm_scores"] = torch.nested.as_nested_tensor(
                [self.rows[k]["rm_scores"] for k in keys], layout=torch.jagged
            )
        return out

    def put(self, keys: list[str], partition_id: str, fields: Any) -> None:
        self.puts.append(list(keys))
        for key, row in zip(keys, fields["rm_scores"].unbind(), strict=True):
            self.rows[key]["rm_scores"] = row


def _row(uid: str, score: float, perception: float, failed: float, length: int = 3) -> dict[str, Any]:
    scores = torch.zeros(length)
    scores[-1] = score
    info = {"perception": perception, "judge_failed": failed, "perception_excluded": failed}
    return {"uid": uid, "rm_scores": scores, "extra_fields": {"reward_extra_info": info}}


def _meta(keys: list[str]) -> Any:
    from transfer_queue import KVBatchMeta

    return KVBatchMeta(keys=keys, tags=[{} for _ in keys], partition_id="train")


def test_rewrite_batch_changes_only_failed_groups() -> None:
    store = FakeStore(
        {
            "a_0_0": _row("a", 1.7, 1.0, 0.0),
            "a_1_0": _row("a", 1.0, 0.0, 1.0, length=5),
            "b_0_0": _row("b", 1.35, 0.5, 0.0),
            "b_1_0": _row("b", 1.0, 0.0, 0.0),
        }
    )
    counts = rewrite_batch(_meta(list(store.rows)), store.get, store.put, weight=0.7, rollout_n=2)
    assert counts == {EXCLUDED_GROUPS_METRIC: 1.0, PARTIAL_GROUPS_METRIC: 0.0}
    assert store.puts == [["a_0_0"]]  # the failed rollout already has no perception term
    assert store.rows["a_0_0"]["rm_scores"].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert store.rows["b_0_0"]["rm_scores"].tolist() == pytest.approx([0.0, 0.0, 1.35])


def test_rewrite_batch_stops_on_rows_without_reward_extras() -> None:
    store = FakeStore({"a_0_0": _row("a", 1.0, 0.0, 1.0), "a_1_0": _row("a", 1.0, 0.0, 0.0)})
    store.rows["a_1_0"]["extra_fields"] = {}
    with pytest.raises(RuntimeError, match=r"a_1_0.*perception reward manager"):
        rewrite_batch(_meta(list(store.rows)), store.get, store.put, weight=0.7, rollout_n=2)
    assert store.puts == []


def test_sessions_per_group_counts_sessions_not_outputs() -> None:
    keys = ["u1_0_0", "u1_0_1", "u1_1_0", "u2_0_0"]  # a multi-output session counts once
    assert sessions_per_group(keys) == {"u1": 2, "u2": 1}


def test_sampler_rewrites_train_batches_only_and_forwards_the_rest() -> None:
    store = FakeStore({"a_0_0": _row("a", 1.7, 1.0, 0.0), "a_1_0": _row("a", 1.0, 0.0, 1.0)})
    calls: list[tuple[int, str, int]] = []

    class Buffer:
        poll_interval = 0.5

        def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[Any, dict]:
            calls.append((global_steps, partition_id, batch_size))
            return _meta(list(store.rows)), {"training/off_policy/evicted_samples": 0}

        def get_sampleable_count(self, global_steps: int, partition_id: str) -> int:
            return 7

    sampler = GroupConsistentSampler(
        Buffer(), weight=0.7, rollout_n=2, kv_batch_get=store.get, kv_batch_put=store.put
    )
    assert sampler.poll_interval == 0.5 and sampler.get_sampleable_count(1, "train") == 7
    sampler.sample(global_steps=3, partition_id="val", batch_size=1)
    assert store.puts == [] and sampler.take_metrics() == {}
    batch, metrics = sampler.sample(global_steps=3, partition_id="train", batch_size=1)
    assert metrics == {"training/off_policy/evicted_samples": 0} and batch.keys == ["a_0_0", "a_1_0"]
    sampler.sample(global_steps=3, partition_id="train", batch_size=1)
    assert calls == [(3, "val", 1), (3, "train", 1), (3, "train", 1)]
    assert sampler.take_metrics() == {EXCLUDED_GROUPS_METRIC: 2.0, PARTIAL_GROUPS_METRIC: 0.0}
    assert sampler.take_metrics() == {}


def test_main_ppo_wraps_the_trainer_only_for_the_perception_manager(tokenizer_path: Path) -> None:
    from verl.trainer.ppo.v1 import PPOTrainerSync

    perception = compose_trainer_config(
        perception_reward_overrides(tokenizer_path, {"judge": "lexical", "weights": {"perception": 0.5}})
    )
    assert uses_perception_manager(perception) and perception_weight(perception) == 0.5
    cls = main_ppo.trainer_class(perception)
    assert issubclass(cls, with_group_consistent_perception(PPOTrainerSync))
    for layer in cls.__mro__[:2]:
        assert {name for name in vars(layer) if not name.startswith("_")} == {"step"}
    registered = compose_trainer_config(
        ["reward.reward_manager.source=register", "reward.reward_manager.name=perception"]
    )
    import perception_verl.integration.register  # noqa: F401  (what verl's plugin entry point does)

    assert uses_perception_manager(registered)
    naive = compose_trainer_config([])
    assert not uses_perception_manager(naive)
    assert not issubclass(main_ppo.trainer_class(naive), with_group_consistent_perception(PPOTrainerSync))


def test_colocated_reward_route_stops_the_step(tokenizer_path: Path) -> None:
    from verl.trainer.ppo.v1 import PPOTrainerSync

    cfg = compose_trainer_config(
        [*perception_reward_overrides(tokenizer_path, {"judge": "lexical"}), "trainer.n_gpus_per_node=1"]
    )

    class Colocated(with_group_consistent_perception(PPOTrainerSync)):  # type: ignore[misc, valid-type]
        def get_reward_handles(self) -> Any:
            return None

    trainer = Colocated(cfg)
    assert isinstance(trainer.replay_buffer, GroupConsistentSampler)
    with pytest.raises(RuntimeError, match="enable_resource_pool=True") as error:
        trainer.step({}, {})
    assert str(error.value) == COLOCATED_ROUTE_ERROR


# ---------------------------------------------------------------- pins on verl 0.9.1 internals


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_pin_training_batches_come_from_replay_buffer_sample_before_the_advantage() -> None:
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    init = inspect.getsource(PPOTrainer.__init__)
    assert "self.replay_buffer = self._build_replay_buffer()" in init
    assert "self._step_once(" in inspect.getsource(PPOTrainer.step)
    step_once = inspect.getsource(PPOTrainer._step_once)
    order = [
        "batch, off_policy_metrics = self.replay_buffer.sample(",
        "global_steps=self.global_steps,",
        'partition_id="train",',
        "batch_size=sample_batch_size,",
        "if self.reward_loop_manager.reward_loop_worker_handles is None:",
        "batch = self._compute_reward_colocate(batch, metrics=metrics)",
        "batch = self._compute_advantage(batch, metrics=metrics)",
    ]
    positions = [step_once.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), positions
    assert step_once.count("replay_buffer") == 1 and step_once.count("rm_scores") == 0
    advantage = inspect.getsource(PPOTrainer._compute_advantage)
    assert '"uid", "response_mask", "rm_scores"' in advantage
    assert 'data.batch["token_level_scores"] = data.batch["rm_scores"]' in advantage
    uid_line = 'data.non_tensor_batch["uid"] = np.array(data.batch.pop("uid").tolist(), dtype=object)'
    assert uid_line in advantage
    # validation samples its own partition, which the wrapper leaves alone
    assert 'partition_id="val"' in inspect.getsource(PPOTrainer._validate)
    # every trainer mode trains through this step and _step_once, and keeps the replay buffer verl built
    from verl.trainer.ppo.v1 import get_trainer_cls

    for mode in ("sync", "colocate_async", "separate_async"):
        cls = get_trainer_cls(mode)
        for name in ("step", "_step_once", "_compute_advantage"):
            assert getattr(cls, name) is getattr(PPOTrainer, name), f"{mode} overrides {name}"
        assert "self.replay_buffer =" not in inspect.getsource(cls), f"{mode} replaces its replay buffer"


def test_pin_replay_buffers_sample_whole_groups() -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

    for cls in (ReplayBuffer, ReplayBufferAsync):
        assert _params(cls.sample) == ["self", "global_steps", "partition_id", "batch_size"]
        assert "return self._materialize_batch(partition_id, selected_prompt_uids, partition_snapshot)" in (
            inspect.getsource(cls.sample)
        )
    materialize = inspect.getsource(ReplayBuffer._materialize_batch)
    whole = ("for key, tag in partition_snapshot.items():", 'uid = key.split("_")[0]', "if uid in selected:")
    for line in whole:
        assert line in materialize
    postprocess = inspect.getsource(AgentLoopWorkerTQ._agent_loop_postprocess)
    assert 'keys.append(f"{uid}_{session_id}_{i}")' in postprocess
    assert "Publish a terminal status only after every session settles" in inspect.getsource(
        AgentLoopWorkerTQ._run_prompt
    )
    assert "rm_scores[-1] = reward_score" in inspect.getsource(AgentLoopOutput.as_dict)  # score on last token
