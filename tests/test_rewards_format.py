"""Format reward: the strict <think>/<answer> layout with a boxed answer."""

from __future__ import annotations

import pytest

from perception_verl.rewards.format import format_reward

GOOD = "<think>\nJK = 3f - 6 and angle K is 71.\n</think>\n<answer>\nSo \\boxed{71} degrees.\n</answer>"


def test_canonical_layout_scores_one():
    assert format_reward(GOOD) == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "  \n" + GOOD + "\n\n  ",
        "<think>\n\n</think>\n<answer>\n\\boxed{}\n</answer>",
        "<think>\nmulti\nline\n\nthinking\n</think>\n"
        "<answer>\nline one\n\\boxed{\\frac{1}{2}}\nline two\n</answer>",
    ],
)
def test_allowed_variants(response):
    assert format_reward(response) == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "just an answer \\boxed{3}",
        "<think>x</think><answer>\\boxed{3}</answer>",  # no newlines
        "<think>\nx\n</think>\n\n<answer>\n\\boxed{3}\n</answer>",  # blank line between blocks
        "<think>\nx\n</think>\n<answer>\n3\n</answer>",  # no boxed
        "<think>\n\\boxed{3}\n</think>\n<answer>\n3\n</answer>",  # boxed outside the answer
        "<think>\nx\n</think>\n<answer>\n\\boxed{3\n</answer>",  # boxed never closed
        "preamble " + GOOD,
        GOOD + " trailing text",
        "<answer>\n\\boxed{3}\n</answer>\n<think>\nx\n</think>",  # blocks swapped
        GOOD + "\n<answer>\n\\boxed{3}\n</answer>",  # duplicated answer block
        "<think>\n<think>\nx\n</think>\n</think>\n<answer>\n\\boxed{3}\n</answer>",  # nested think
        "<think>\nx\n</think>\n<answer>\n<answer>\n\\boxed{3}\n</answer>\n</answer>",  # nested answer
        "<think>\nx <answer> y\n</think>\n<answer>\n\\boxed{3}\n</answer>",  # stray tag inside think
        "<THINK>\nx\n</THINK>\n<ANSWER>\n\\boxed{3}\n</ANSWER>",
    ],
)
def test_rejected_layouts(response):
    assert format_reward(response) == 0.0


def test_fifty_thousand_characters():
    long_think = "<think>\n" + "step " * 10_000 + "\n</think>\n<answer>\n\\boxed{1}\n</answer>"
    assert format_reward(long_think) == 1.0
    assert format_reward("<think>\n" * 10_000) == 0.0
    assert format_reward("<answer>\n\\boxed{" * 7_000) == 0.0


def test_surrogates_and_control_characters():
    assert format_reward("<think>\n\ud800\x00\x1b\n</think>\n<answer>\n\\boxed{\udfff}\n</answer>") == 1.0
    assert format_reward("\x00" + GOOD) == 0.0


@pytest.mark.parametrize("value", [None, 1, b"<think>", ["<think>"]])
def test_non_text_scores_zero(value):
    assert format_reward(value) == 0.0
