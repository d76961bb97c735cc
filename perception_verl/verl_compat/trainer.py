"""The v1 trainer's replay buffer (``verl/trainer/ppo/v1/trainer_base.py``, verl 0.9.1).

``PPOTrainer.__init__`` builds ``self.replay_buffer`` (``trainer_base.py:131``); ``step`` takes each
training batch from ``self.replay_buffer.sample(global_steps=..., partition_id=..., batch_size=...)``
(``:567``) before the private ``_compute_advantage`` (``:1743``) reads ``rm_scores`` from
TransferQueue. Both of verl's buffers hand out every stored trajectory of each group they select.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def wrap_replay_buffer(trainer: Any, wrap: Callable[[Any], Any]) -> None:
    """Replace ``trainer.replay_buffer`` (whatever sampler verl built) by ``wrap(buffer)``."""
    trainer.replay_buffer = wrap(trainer.replay_buffer)


def replay_buffer(trainer: Any) -> Any:
    """The trainer's (possibly wrapped) replay buffer."""
    return trainer.replay_buffer
