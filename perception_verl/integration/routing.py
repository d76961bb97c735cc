"""Reading verl's trainer config, and the verl settings the perception manager needs to get its inputs.

A judge launched by verl (``reward.reward_model.enable=True``) is reached at the router address verl
passes in. verl's reward loop then calls the reward manager only when
``reward.custom_reward_function.path`` is set (point it at
:func:`perception_verl.integration.manager.compute_score`), and its v1 trainer gives a colocated reward
model no ground truth, so ``reward.reward_model.enable_resource_pool=True`` is required;
:func:`check_routing` enforces both at start.
"""

from __future__ import annotations

from typing import Any

from perception_verl.config import RewardConfigError


def config_get(config: Any, dotted: str, default: Any = None) -> Any:
    """``a.b.c`` of a verl config (DictConfig, dict or attributes); ``default`` when any part is absent."""
    node = config
    for part in dotted.split("."):
        if node is None:
            return default
        getter = getattr(node, "get", None)
        node = getter(part, None) if getter is not None else getattr(node, part, None)
    return default if node is None else node


def check_routing(config: Any, options: Any) -> None:
    """Fail at start on verl settings under which the reward loop would not give the manager its inputs."""
    if not config_get(config, "reward.reward_model.enable", False):
        return
    if config_get(config, "reward.custom_reward_function.path") is None:
        raise RewardConfigError(
            "with reward.reward_model.enable=True verl's reward loop calls the reward manager only when "
            "reward.custom_reward_function.path is set; add "
            "reward.custom_reward_function.path=pkg://perception_verl.integration.manager "
            "reward.custom_reward_function.name=compute_score"
        )
    if config_get(config, "trainer.use_v1", False) and not config_get(
        config, "reward.reward_model.enable_resource_pool", False
    ):
        raise RewardConfigError(
            "verl's v1 trainer sends only prompts and responses (no ground truth, no annotations) to a "
            "colocated reward model; set reward.reward_model.enable_resource_pool=True (judge on its own "
            "GPUs) or serve the judge yourself and set reward.reward_kwargs.judge_urls"
        )
