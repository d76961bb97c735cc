"""Reading one verl sample's non-tensor fields: dotted lookups, the ground truth, a name for log lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from perception_verl.errors import MissingFieldError


def lookup(non_tensor: Mapping[str, Any], dotted: str) -> Any:
    """Read ``a.b.c`` from a sample's non-tensor fields (dicts inside); ``None`` when any part is absent."""
    node: Any = non_tensor
    for part in dotted.split("."):
        if node is None:
            return None
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, np.ndarray) and node.dtype == object and node.shape == ():
            node = node.item()
            node = node.get(part) if isinstance(node, Mapping) else None
        else:
            return None
    return node


def row_name(item_non_tensor: Mapping[str, Any]) -> str:
    """How log lines and errors name a sample: its ``extra_info`` index/id/uid, else its ``uid``."""
    info = item_non_tensor.get("extra_info")
    if isinstance(info, Mapping):
        for key in ("index", "id", "uid"):
            if info.get(key) is not None:
                return f"{key}={info[key]}"
    uid = item_non_tensor.get("uid")
    return f"uid={uid}" if uid is not None else "unknown row"


def raw_ground_truth(item_non_tensor: Mapping[str, Any], row: str) -> Any:
    """The sample's ``reward_model.ground_truth`` as stored; :class:`MissingFieldError` when absent."""
    reward_model = item_non_tensor.get("reward_model")
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        raise MissingFieldError(
            f"sample {row} has no reward_model.ground_truth; the perception reward "
            "manager needs the dataset's reward_model field in the reward loop"
        )
    return reward_model["ground_truth"]
