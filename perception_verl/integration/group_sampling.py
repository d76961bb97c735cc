"""Group-consistent perception in verl's v1 trainer, applied where its replay buffer hands out a batch.

verl 0.9.1's v1 ``_step_once`` takes each training batch from ``self.replay_buffer.sample(...)`` and
only later runs ``_compute_advantage``, which reads ``uid`` and ``rm_scores`` back from TransferQueue.
On the streamed reward route (verl's default, the perception manager's only one under the v1
trainer) the rewards and the reward extras are already in TransferQueue when ``sample`` returns.
:class:`GroupConsistentSampler` wraps the trainer's replay buffer (a public attribute with a public
``sample``) and, for the ``train`` partition, rewrites the sampled rows' ``rm_scores`` with
:func:`~perception_verl.integration.advantage.group_consistent_scores` before anything reads them.
:func:`with_group_consistent_perception` installs it from the trainer's constructor and adds the
counts to the step metrics in the public ``step``. Nothing in verl is replaced or patched.

Groups: both of verl's replay buffers hand out every stored trajectory of each prompt group they
select, so a group is whole in its batch. A group with fewer sessions than ``rollout.n`` (sessions
whose rollout failed, or a custom sampler that splits groups) is still rewritten over the rows in the
batch, which are exactly the rows GRPO normalises together; such groups are counted in
``reward/perception_partial_groups``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from perception_verl.config import from_kwargs
from perception_verl.integration.advantage import EXCLUDED_GROUPS_METRIC, group_consistent_scores
from perception_verl.integration.step_metrics import extras_from_extra_fields
from perception_verl.verl_compat.trainer import replay_buffer, wrap_replay_buffer
from perception_verl.verl_compat.transfer_queue import (
    TRAIN_PARTITION,
    KvBatchGet,
    KvBatchPut,
    kv_functions,
    put_rm_scores,
    read_fields,
    sessions_per_group,
)

PARTIAL_GROUPS_METRIC = "reward/perception_partial_groups"
NEEDED_EXTRAS = ("perception", "judge_failed", "perception_excluded")
COLOCATED_ROUTE_ERROR = (
    "group-consistent perception needs the rewards in TransferQueue when the replay buffer samples "
    "(verl's streamed reward route), but this run computes them colocated after sampling "
    "(reward.reward_model.enable=True without reward.reward_model.enable_resource_pool=True); set "
    "reward.reward_model.enable_resource_pool=True or serve the judge yourself "
    "(reward.reward_kwargs.judge_urls) and leave reward.reward_model.enable=False"
)


def _column(extras: Mapping[str, list[Any]], key: str, keys: Sequence[str]) -> list[float]:
    values = extras.get(key)
    missing = [k for k, v in zip(keys, values or [None] * len(keys), strict=True) if v is None]
    if missing:
        raise RuntimeError(
            f"group-consistent perception: samples {missing[:5]} carry no reward_extra_info[{key!r}]; "
            "is the perception reward manager selected "
            "(reward.reward_manager.name=PerceptionRewardManager or perception)?"
        )
    return [float(v) for v in values]  # type: ignore[union-attr]


def _uids(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def rewrite_batch(
    batch: Any, kv_batch_get: KvBatchGet, kv_batch_put: KvBatchPut, *, weight: float, rollout_n: int
) -> dict[str, float]:
    """Rewrite a sampled batch's ``rm_scores`` in TransferQueue group-consistently; returns the counts.

    ``batch`` is verl's ``KVBatchMeta``. Only rows whose score changes are written back; each keeps its
    score on its last response token, where verl's agent loop puts it.
    """
    if not batch.keys:
        return {EXCLUDED_GROUPS_METRIC: 0.0, PARTIAL_GROUPS_METRIC: 0.0}
    data = read_fields(batch, kv_batch_get, ["uid", "rm_scores", "extra_fields"])
    extras = extras_from_extra_fields(list(data["extra_fields"]))
    columns = [_column(extras, key, batch.keys) for key in NEEDED_EXTRAS]
    rows = list(data["rm_scores"].unbind())
    totals = [float(row.sum()) for row in rows]
    scores, excluded = group_consistent_scores(totals, *columns, _uids(data["uid"]), weight)
    changed = [i for i, (new, old) in enumerate(zip(scores.tolist(), totals, strict=True)) if new != old]
    if changed:
        updated = {}
        for i in changed:
            row = rows[i].clone()
            row[-1] += float(scores[i]) - totals[i]
            updated[i] = row
        put_rm_scores(batch, kv_batch_put, updated)
    partial = sum(1 for count in sessions_per_group(batch.keys).values() if count < rollout_n)
    return {EXCLUDED_GROUPS_METRIC: float(excluded), PARTIAL_GROUPS_METRIC: float(partial)}


class GroupConsistentSampler:
    """verl's replay buffer whose training batches leave ``sample`` with group-consistent ``rm_scores``.

    Every other attribute is the wrapped buffer's. Counts add up until :meth:`take_metrics`.
    """

    def __init__(
        self,
        inner: Any,
        *,
        weight: float,
        rollout_n: int,
        kv_batch_get: KvBatchGet | None = None,
        kv_batch_put: KvBatchPut | None = None,
    ) -> None:
        if kv_batch_get is None or kv_batch_put is None:
            default_get, default_put = kv_functions()
            kv_batch_get = kv_batch_get or default_get
            kv_batch_put = kv_batch_put or default_put
        self.inner = inner
        self.weight = weight
        self.rollout_n = rollout_n
        self.kv_batch_get = kv_batch_get
        self.kv_batch_put = kv_batch_put
        self.counts: dict[str, float] = {}

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[Any, dict]:
        """The wrapped buffer's ``sample``; a ``train`` batch is then rewritten in TransferQueue."""
        batch, metrics = self.inner.sample(
            global_steps=global_steps, partition_id=partition_id, batch_size=batch_size
        )
        if partition_id == TRAIN_PARTITION:
            found = rewrite_batch(
                batch, self.kv_batch_get, self.kv_batch_put, weight=self.weight, rollout_n=self.rollout_n
            )
            for key, value in found.items():
                self.counts[key] = self.counts.get(key, 0.0) + value
        return batch, metrics

    def take_metrics(self) -> dict[str, float]:
        """The counts since the last call (summed over the step's samples), then reset."""
        counts, self.counts = self.counts, {}
        return counts

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


def perception_weight(config: Any) -> float:
    """The validated perception weight of ``reward.reward_kwargs`` (what the manager scores with)."""
    reward = config.get("reward") or {}
    return from_kwargs(reward.get("reward_kwargs")).weights.perception


def uses_perception_manager(config: Any) -> bool:
    """Whether verl's reward loop would run :class:`PerceptionRewardManager` (or a subclass) for it."""
    reward = config.get("reward") or {}
    if not reward.get("reward_manager"):
        return False
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    # Imported here, after verl: importing the manager first would make verl load its plugins while
    # the manager module is still executing (see perception_verl.plugin).
    from perception_verl.integration.manager import PerceptionRewardManager

    try:
        manager_cls = resolve_reward_manager_cls(config)
    except (KeyError, ValueError, ImportError, AttributeError, AssertionError):
        return False
    return isinstance(manager_cls, type) and issubclass(manager_cls, PerceptionRewardManager)


@functools.cache
def with_group_consistent_perception(base: type) -> type:
    """``base`` (a verl v1 ``PPOTrainer`` subclass) whose training batches are group-consistent.

    The constructor wraps ``self.replay_buffer`` in :class:`GroupConsistentSampler`; ``step`` stops on
    the colocated reward route (rewards not yet there at sampling) and adds the counts to ``metrics``.
    """

    class GroupConsistentPerceptionTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            weight, rollout_n = perception_weight(config), int(config.actor_rollout_ref.rollout.n)
            wrap_replay_buffer(
                self, lambda inner: GroupConsistentSampler(inner, weight=weight, rollout_n=rollout_n)
            )

        def step(self, metrics: dict, timing_raw: dict) -> Any:
            if self.get_reward_handles() is None:
                raise RuntimeError(COLOCATED_ROUTE_ERROR)
            replay_buffer(self).take_metrics()
            batch = super().step(metrics, timing_raw)
            metrics.update(replay_buffer(self).take_metrics())
            return batch

    GroupConsistentPerceptionTrainer.__name__ = f"GroupConsistentPerception{base.__name__}"
    GroupConsistentPerceptionTrainer.__qualname__ = GroupConsistentPerceptionTrainer.__name__
    GroupConsistentPerceptionTrainer.__doc__ = (
        f"verl's {base.__name__}, with group-consistent perception in its training batches."
    )
    return GroupConsistentPerceptionTrainer
