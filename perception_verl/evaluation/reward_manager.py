"""The reward manager of the evaluation recipe: the perception manager plus the row's id in the dump.

verl's validation dump (``trainer.validation_data_dir``) writes each sample's decoded prompt, response,
ground truth and score, plus every ``reward_extra_info`` key; it writes no dataset id, and its v1
trainer orders the lines by a random per-prompt uuid. This manager adds two text keys to
``reward_extra_info`` so the scorer can join each line back to its benchmark row:
``eval_id`` (``extra_info.id``) and ``eval_benchmark`` (``extra_info.benchmark``, else the row's
``data_source``). verl's validation metrics skip text values, so the metrics are unchanged.

Load it with ``reward.reward_manager.source=importlib``
``reward.reward_manager.module.path=pkg://perception_verl.evaluation.reward_manager``
``reward.reward_manager.name=EvalRewardManager``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verl import DataProto

from perception_verl.errors import MissingFieldError
from perception_verl.integration.manager import PerceptionRewardManager

ID_KEY = "eval_id"
BENCHMARK_KEY = "eval_benchmark"


def row_keys(non_tensor: Mapping[str, Any]) -> dict[str, str]:
    """The join keys of one sample, from its ``extra_info`` (:class:`MissingFieldError` if absent)."""
    info = non_tensor.get("extra_info")
    row_id = info.get("id") if isinstance(info, Mapping) else None
    if row_id is None or str(row_id) == "":
        raise MissingFieldError(
            "evaluation rows need extra_info.id (build them with data_prep/build_benchmarks.py); "
            f"this sample's extra_info is {info!r}"
        )
    benchmark = info.get("benchmark") or non_tensor.get("data_source") or ""
    return {ID_KEY: str(row_id), BENCHMARK_KEY: str(benchmark)}


class EvalRewardManager(PerceptionRewardManager):
    """:class:`PerceptionRewardManager` whose ``reward_extra_info`` also names the benchmark row."""

    async def run_single(self, data: DataProto) -> dict:
        keys = row_keys(data[-1:][0].non_tensor_batch)
        result = await super().run_single(data)
        result["reward_extra_info"] = {**result["reward_extra_info"], **keys}
        return result
