"""Answers that make math-verify run C code for a minute or more, and a check without the size guard.

``E_TOWER`` is the issue's bomb: sympy evaluates ``e^{e^{e^{e^{e^{e}}}}}`` with big-integer C code
that holds the interpreter lock for 70-100 s. :func:`unguarded_accuracy` hands the boxed answer to
math-verify directly, skipping :mod:`perception_verl.rewards.accuracy`'s input limits, so a test can
show that the process deadline alone stops such a check (the limits are heuristics).
"""

from __future__ import annotations

from math_verify import parse, verify

from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward, extract_answer, extract_boxed

E_TOWER = r"e^{e^{e^{e^{e^{e}}}}}"
BOMB_RESPONSE = "<think>\nA tower.\n</think>\n<answer>\n\\boxed{" + E_TOWER + "}\n</answer>"


def unguarded_accuracy(response: str, ground_truth: str) -> AccuracyResult:
    """math-verify on the boxed answer with no size guard (bombs run to the end); else the real check."""
    boxed = extract_boxed(extract_answer(response))
    if boxed is None or "e^{" not in boxed:
        return accuracy_reward(response, ground_truth)
    gold = parse("\\boxed{" + ground_truth + "}", parsing_timeout=None)
    predicted = parse("\\boxed{" + boxed + "}", parsing_timeout=None)
    correct = verify(gold, predicted, timeout_seconds=None)
    return AccuracyResult(float(correct), "correct" if correct else "mismatch", boxed)


def check_or_die(kind: str, value: int = 0) -> int:
    """Pool-test check: ``"ok"`` gives ``value + 1``, ``"die"`` ends its process, ``"raise"`` raises."""
    import os

    if kind == "die":
        os._exit(3)
    if kind == "raise":
        raise ValueError("asked to raise")
    return value + 1
