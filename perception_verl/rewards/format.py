"""Format reward: the strict ``<think>``/``<answer>`` layout of Perception-R1 with a boxed final answer."""

from __future__ import annotations

import re

_LAYOUT = re.compile(r"\A\s*<think>\n(.*)\n</think>\n<answer>\n(.*)\n</answer>\s*\Z", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_BOXED_OPEN = "\\boxed{"


def format_reward(response: str) -> float:
    """1.0 when ``response`` is ``<think>\\n...\\n</think>\\n<answer>\\n...\\boxed{...}...\\n</answer>``.

    Whitespace is allowed only before the opening ``<think>`` and after the closing ``</answer>``; each
    tag must occur exactly once (no nested or repeated blocks); the answer block must contain a
    ``\\boxed{`` followed later by a ``}``. Anything else (including non-text input) gives 0.0.
    """
    if not isinstance(response, str):
        return 0.0
    if any(response.count(tag) != 1 for tag in _TAGS):
        return 0.0
    layout = _LAYOUT.match(response)
    if layout is None:
        return 0.0
    answer = layout.group(2)
    start = answer.find(_BOXED_OPEN)
    if start < 0 or answer.find("}", start + len(_BOXED_OPEN)) < 0:
        return 0.0
    return 1.0
