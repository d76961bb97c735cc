"""Registers :class:`PerceptionRewardManager` in verl's reward-loop registry under ``"perception"``.

Importing this module is the registration (verl's ``@register`` mechanism). verl resolves
``reward.reward_manager.source=register`` with ``reward.reward_manager.name=perception`` in the
trainer process and in every reward-loop Ray worker, so this module must be imported in each of
them: pass Ray's worker setup hook through verl's config,
``+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=perception_verl.integration.register.setup``.
``source=importlib`` needs none of this and is the recommended path.
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from perception_verl.integration.manager import PerceptionRewardManager

REGISTERED_NAME = "perception"

register(REGISTERED_NAME)(PerceptionRewardManager)



def setup() -> None:
    """Ray ``worker_process_setup_hook``: importing this module already registered the manager."""


__all__ = ["REGISTERED_NAME", "PerceptionRewardManager", "setup"]
