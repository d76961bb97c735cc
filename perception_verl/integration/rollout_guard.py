"""Stop a run whose rollout engine and actor disagree about the policy at its first step.

verl compares, each step, the rollout engine's log-probabilities of the sampled tokens with the
actor's recomputation (``actor_rollout_ref.rollout.calculate_log_probs=True``, verl's default): the
KL estimate ``rollout_corr/k3_kl`` (verl's default ``algorithm.rollout_correction``) and the mean
probability gap ``training/rollout_probs_diff_mean``. The same weights give nearly the same
distribution (k3_kl about 1e-5 on the CPU twin; a few thousandths with bf16 on GPUs); image-blind
rollouts gave about 4. A large gap at the first step means the rollout samples from another policy
than the one being trained, and every step after it trains on the wrong samples. The KL estimate is
checked where logged (the probability gap stays small for a high-entropy policy even when the
distributions differ), else the probability gap. :func:`disagreement` is the pure check; the trainer
(:mod:`perception_verl.integration.step_metrics`) stops at the first step it runs and warns on later
ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from perception_verl.errors import PerceptionVerlError

METRICS = ("rollout_corr/k3_kl", "training/rollout_probs_diff_mean")
OPTION = "reward.reward_kwargs.rollout_mismatch_max"
DEFAULT_BOUND = 0.1
LIKELY_CAUSES = (
    "image-blind rollouts: vLLM >= 0.29 normalises pixels inside Qwen2.5-VL with buffers that verl's "
    "load_format=dummy leaves random (set actor_rollout_ref.rollout.load_format=auto, as the recipes do, "
    "or +actor_rollout_ref.rollout.engine_kwargs.vllm.mm_device_do_normalize=False)",
    "different processors, chat templates or image sizes for rollout and actor",
    "a rollout dtype or quantization far from the actor's",
)


class RolloutMismatchError(PerceptionVerlError, RuntimeError):
    """The rollout engine's token probabilities are far from the actor's at the first step."""


def disagreement(metrics: Mapping[str, object], bound: float | None) -> str | None:
    """A message when ``metrics`` show rollout and actor disagreeing beyond ``bound``, else None.

    ``bound`` None disables the check. Missing metrics are not a disagreement (the caller says so).
    """
    if bound is None:
        return None
    metric = next((m for m in METRICS if isinstance(metrics.get(m), int | float)), None)
    if metric is None:
        return None
    value = metrics[metric]
    if math.isnan(float(value)) or float(value) <= bound:
        return None
    causes = "; ".join(f"({i}) {c}" for i, c in enumerate(LIKELY_CAUSES, start=1))
    return (
        f"the rollout and the actor disagree: {metric} = {float(value):.4g} > {bound} ({OPTION}); "
        f"the rollout samples from another policy than the one trained. Likely causes: {causes}. "
        f"Set {OPTION}=null to train anyway."
    )
