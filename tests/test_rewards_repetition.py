"""Repetition penalty over lower-cased word n-grams."""

from __future__ import annotations

import math

import pytest

from perception_verl.rewards.repetition import repetition_penalty


def test_fewer_words_than_n_is_zero():
    assert repetition_penalty("", n=20) == 0.0
    assert repetition_penalty("one two three", n=20) == 0.0
    assert repetition_penalty(" ".join(["same"] * 19), n=20) == 0.0


def test_exactly_n_words_is_one_distinct_ngram():
    assert repetition_penalty(" ".join(["same"] * 20), n=20) == 0.0


def test_hand_computed_small_cases():
    # n=2 over "a b a b a": ab, ba, ab, ba -> 2 distinct of 4 -> -2 * (1 - 2/4)
    assert repetition_penalty("a b a b a", n=2) == pytest.approx(-1.0)
    # n=1, case folded: "A a" -> 1 distinct of 2
    assert repetition_penalty("A a", n=1) == pytest.approx(-1.0)
    # n=3 over "x y z x y z": xyz, yzx, zxy, xyz -> 3 of 4 -> -2 * 0.25
    assert repetition_penalty("x y z\tx\ny  z", n=3) == pytest.approx(-0.5)


def test_degenerate_repetition_nears_max_penalty():
    words = " ".join(["the angle is seventy one degrees"] * 100)  # 600 words, period 6
    total = 600 - 20 + 1
    assert repetition_penalty(words) == pytest.approx(-2.0 * (1 - 6 / total))


def test_max_penalty_scales_linearly():
    assert repetition_penalty("a a a a", n=1, max_penalty=4.0) == pytest.approx(-3.0)
    assert repetition_penalty("a a a a", n=1, max_penalty=0.0) == 0.0


def test_no_repetition_is_positive_zero():
    result = repetition_penalty(" ".join(f"w{i}" for i in range(100)))
    assert result == 0.0
    assert math.copysign(1.0, result) == 1.0


def test_fifty_thousand_characters():
    distinct = " ".join(f"w{i:05d}" for i in range(8_400))
    assert len(distinct) >= 50_000
    assert repetition_penalty(distinct) == 0.0
    repeated = "loop " * 10_000
    assert repetition_penalty(repeated) == pytest.approx(-2.0 * (1 - 1 / (10_000 - 19)))


def test_surrogates_and_control_characters():
    text = ("\ud800 \x00 \x1b " * 30).strip()
    penalty = repetition_penalty(text, n=3)
    assert -2.0 <= penalty < 0.0


def test_non_text_is_zero():
    assert repetition_penalty(None) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "20"])
def test_invalid_n(n):
    with pytest.raises(ValueError, match="n must be"):
        repetition_penalty("a b c", n=n)


@pytest.mark.parametrize("max_penalty", [-1.0, math.nan, math.inf, "2", True])
def test_invalid_max_penalty(max_penalty):
    with pytest.raises(ValueError, match="max_penalty"):
        repetition_penalty("a b c", max_penalty=max_penalty)
