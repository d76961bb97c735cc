"""Perception reward: mean of 0/1 verdicts, excluded (None) without verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from perception_verl.rewards.perception import perception_reward


@pytest.mark.parametrize("verdicts", [None, [], (), np.array([], dtype=np.int64)])
def test_no_verdicts_is_excluded(verdicts):
    assert perception_reward(verdicts) is None


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([1], 1.0),
        ([0], 0.0),
        ((1, 0, 1, 1), 0.75),
        ([True, False], 0.5),
        (np.array([1, 1, 0], dtype=np.int64), 2 / 3),
    ],
)
def test_mean_of_verdicts(verdicts, expected):
    assert perception_reward(verdicts) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [[2], [1, -1], [0.5], [1.0], ["1"], [None], "01"])
def test_non_binary_verdicts_are_rejected(bad):
    with pytest.raises(ValueError, match="must be 0 or 1"):
        perception_reward(bad)
