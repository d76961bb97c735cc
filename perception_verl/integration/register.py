"""Registers :class:`PerceptionRewardManager` in verl's reward-loop registry under ``"perception"``.

Importing this module is the registration (verl's ``@register`` mechanism), and it raises if that
fails. An installed package needs none of it: verl loads the ``verl.plugins`` entry point
(:mod:`perception_verl.plugin`) in every process. This module is for a process that imported the
manager before verl (see docs/architecture.md), and :func:`setup` for command lines that still pass it
as Ray's ``worker_process_setup_hook``.
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from perception_verl.integration.manager import PerceptionRewardManager

REGISTERED_NAME = "perception"


def register_manager() -> None:
    """Map ``"perception"`` to :class:`PerceptionRewardManager` in verl's registry (idempotent; raises)."""
    register(REGISTERED_NAME)(PerceptionRewardManager)


register_manager()


def setup() -> None:
    """Ray ``worker_process_setup_hook``: importing this module already registered the manager."""


__all__ = ["REGISTERED_NAME", "PerceptionRewardManager", "register_manager", "setup"]
