"""Stop a run whose rollout engine and actor disagree about the policy at its first step.

verl computes, each step, how far the rollout engine's probabilities of the sampled tokens are from
the actor's recomputation (``training/rollout_probs_diff_mean``, with
``actor_rollout_ref.rollout.calculate_log_probs=True``, verl's default). The same weights give nearly
the same probabilities (about 0.002 on the CPU twin; a few hundredths with bf16 on GPUs). A large
gap at the first step means the rollout samples from another policy than the one being trained, and
every step after it trains on the wrong samples. :func:`disagreement` is the pure check; the
trainer (:mod:`perception_verl.integration.step_metrics`) stops at the first step it runs and warns
on later ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

METRIC = "training/rollout_probs_diff_mean"
OPTION = "reward.reward_kwargs.rollout_probs_diff_max"
DEFAULT_BOUND = 0.1
LIKELY_CAUSES = (
    "image-blind rollouts: vLLM >= 0.29 normalises pixels inside Qwen2.5-VL with buffers that verl's "
    "load_format=dummy leaves random (set actor_rollout_ref.rollout.load_format=auto, as the recipes do, "
    "or +actor_rollout_ref.rollout.engine_kwargs.vllm.mm_device_do_normalize=False)",
    "different processors, chat templates or image sizes for rollout and actor",
    "a rollout dtype or quantization far from the actor's",
)


class RolloutMismatchError(RuntimeError):
    """The rollout engine's token probabilities are far from the actor's at the first step."""


def disagreement(metrics: Mapping[str, object], bound: float | None) -> str | None:
    """A message when ``metrics`` show rollout and actor disagreeing beyond ``bound``, else None.

    ``bound`` None disables the check. A missing metric is not a disagreement (the caller says so).
    """
    if bound is None:
        return None
    value = metrics.get(METRIC)
    if not isinstance(value, int | float) or math.isnan(float(value)) or float(value) <= bound:
        return None
    causes = "; ".join(f"({i}) {c}" for i, c in enumerate(LIKELY_CAUSES, start=1))
    return (
        f"the rollout and the actor disagree: {METRIC} = {float(value):.4f} > {bound} ({OPTION}); "
        f"the rollout samples from another policy than the one trained. Likely causes: {causes}. "
        f"Set {OPTION}=null to train anyway."
    )
