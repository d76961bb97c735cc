"""Registers :class:`PerceptionRewardManager` in verl's reward-loop registry under ``"perception"``.

Importing this module is the registration (verl's ``@register`` mechanism). verl resolves
``reward.reward_manager.source=register`` with ``reward.reward_manager.name=perception`` in the
trainer process and in every reward-loop Ray worker, so this module must be imported in each of
them (e.g. through ``python -m perception_verl.main_ppo``, which imports it, or a Ray
``worker_process_setup_hook``). ``source=importlib`` needs none of this and is the recommended path.
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from perception_verl.integration.manager import PerceptionRewardManager

REGISTERED_NAME = "perception"

register(REGISTERED_NAME)(PerceptionRewardManager)

__all__ = ["REGISTERED_NAME", "PerceptionRewardManager"]
