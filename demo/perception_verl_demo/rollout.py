"""Token tensors shaped like verl's rollout output, for the CPU smoke run and the tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def rollout_tensors(
    prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad: int, right_pad: int = 0
) -> dict[str, Any]:
    """Left-padded prompts and right-padded responses with verl's keys.

    Returns ``prompts``, ``responses``, ``input_ids``, ``attention_mask`` (1 on real tokens) and
    ``position_ids``. ``right_pad`` adds that many padding columns after the longest response.
    """
    import torch

    p_len = max(len(p) for p in prompts)
    r_len = max(len(r) for r in responses) + right_pad
    count = len(prompts)
    prompt_ids = torch.full((count, p_len), pad, dtype=torch.long)
    response_ids = torch.full((count, r_len), pad, dtype=torch.long)
    mask = torch.zeros((count, p_len + r_len), dtype=torch.long)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        prompt_ids[i, p_len - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        response_ids[i, : len(response)] = torch.tensor(list(response), dtype=torch.long)
        mask[i, p_len - len(prompt) : p_len + len(response)] = 1
    return {
        "prompts": prompt_ids,
        "responses": response_ids,
        "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
        "attention_mask": mask,
        "position_ids": torch.clamp(torch.cumsum(mask, dim=1) - 1, min=0),
    }


def object_array(items: Sequence[Any]) -> np.ndarray:
    """A 1-D object array holding ``items`` as they are (dicts and lists are not broadcast)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out
