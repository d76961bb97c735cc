"""Is a response's final answer right? Choice letters, choice texts, precision, units, math-verify.

The answer text is taken as the accuracy reward takes it (:mod:`perception_verl.rewards.accuracy`):
the last ``\\boxed{}`` inside the last ``<answer>`` block, else the answer text itself. Then:

- multiple choice: a choice letter (``B``, ``(B)``, ``B.``, ``B: 40°``, ``\\text{B}``) is compared
  with the correct letter; otherwise the text is compared with each choice (same text, or equal by
  math-verify) and a single matching choice gives its letter;
- free form: the unit is removed from the answer; with a precision (decimal places, MathVista's
  float answers) both numbers are rounded to it and compared; otherwise math-verify decides
  (:func:`~perception_verl.rewards.accuracy.accuracy_reward`), with same-text equality first.

All functions are pure; :func:`check_answer` never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from perception_verl.rewards.accuracy import (
    accuracy_reward,
    clean_text,
    extract_answer,
    extract_boxed,
    strip_degrees,
)

MULTIPLE_CHOICE = "multiple_choice"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_LETTER = re.compile(r"^(?:\(([A-Z])\)(?:\s.*)?|([A-Z])(?:\s*[.:)]\s*.*)?)$", re.DOTALL)
_OPTION_WORD = re.compile(r"^(?:option|choice|answer)\s*(?:is\s*)?[:]?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True)
class AnswerSpec:
    """What a benchmark row says its answer is."""

    answer: str
    question_type: str
    answer_type: str = "text"
    choices: tuple[str, ...] = ()
    answer_letter: str | None = None
    precision: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class AnswerCheck:
    """``correct`` with how it was decided (``reason``) and the answer text that was compared."""

    correct: bool
    reason: str
    extracted: str


def final_answer(response: str) -> str:
    """The answer text the accuracy reward would compare: boxed content, else the answer block."""
    answer = extract_answer(clean_text(response))
    boxed = extract_boxed(answer)
    return (boxed if boxed is not None else answer).strip()


def _plain(text: str) -> str:
    text = _TEXT_WRAP.sub(r"\1", text)
    return text.replace("$", "").strip()


def choice_letter(text: str, count: int) -> str | None:
    """The choice letter ``text`` names (``B``, ``(B)``, ``B.``, ``B: ...``, ``Option B``), else ``None``."""
    plain = _OPTION_WORD.sub("", _plain(text))
    match = _LETTER.match(plain)
    if match is None:
        return None
    letter = match.group(1) or match.group(2)
    allowed = _LETTERS[:count] if count else _LETTERS
    return letter if letter in allowed else None


def _same(a: str, b: str) -> bool:
    squash = re.compile(r"\s+")
    return (
        squash.sub("", strip_degrees(_plain(a))).lower() == squash.sub("", strip_degrees(_plain(b))).lower()
    )


def _equal(answer: str, truth: str) -> bool:
    if _same(answer, truth):
        return True
    return accuracy_reward("\\boxed{" + answer + "}", truth).score == 1.0


def strip_unit(text: str, unit: str | None) -> str:
    """``text`` without a trailing ``unit`` (plain or inside ``\\text{}``)."""
    plain = _plain(text)
    if unit:
        cleaned = unit.strip()
        if cleaned and plain.endswith(cleaned):
            plain = plain[: -len(cleaned)].strip()
    return plain


def _number(text: str) -> float | None:
    candidate = strip_degrees(text).strip().rstrip(".").replace(" ", "")
    if candidate.endswith("%"):
        candidate = candidate[:-1]
    if not _NUMBER.match(candidate):
        return None
    try:
        return float(candidate.replace(",", ""))
    except ValueError:
        return None


def _check_choice(extracted: str, spec: AnswerSpec) -> AnswerCheck:
    letter = choice_letter(extracted, len(spec.choices))
    if letter is not None:
        return AnswerCheck(letter == spec.answer_letter, "letter", extracted)
    matches = [i for i, choice in enumerate(spec.choices) if _equal(extracted, choice)]
    if len(matches) == 1:
        return AnswerCheck(_LETTERS[matches[0]] == spec.answer_letter, "choice_text", extracted)
    if len(matches) > 1:
        return AnswerCheck(False, "ambiguous_choice", extracted)
    return AnswerCheck(False, "no_choice", extracted)


def _check_free(extracted: str, spec: AnswerSpec) -> AnswerCheck:
    answer = strip_unit(extracted, spec.unit)
    truth = strip_unit(spec.answer, spec.unit)
    if spec.precision is not None:
        predicted, expected = _number(answer), _number(truth)
        if predicted is not None and expected is not None:
            same = round(predicted, spec.precision) == round(expected, spec.precision)
            return AnswerCheck(same, "precision", extracted)
    if _same(answer, truth):
        return AnswerCheck(True, "same_text", extracted)
    result = accuracy_reward("\\boxed{" + answer + "}", truth)
    return AnswerCheck(result.score == 1.0, f"math_verify:{result.reason}", extracted)


def check_extracted(extracted: str, spec: AnswerSpec) -> AnswerCheck:
    """Check an already extracted answer text (e.g. one an answer judge returned)."""
    extracted = extracted.strip()
    if not extracted:
        return AnswerCheck(False, "no_answer", "")
    if spec.question_type == MULTIPLE_CHOICE:
        return _check_choice(extracted, spec)
    return _check_free(extracted, spec)


def check_answer(response: str, spec: AnswerSpec) -> AnswerCheck:
    """Check a full response: extract its final answer, then :func:`check_extracted`."""
    if not isinstance(response, str):
        return AnswerCheck(False, "no_answer", "")
    return check_extracted(final_answer(response), spec)


def spec_from_extra_info(info: dict, ground_truth: str) -> AnswerSpec:
    """The :class:`AnswerSpec` of a benchmark row (its ``extra_info`` as the converter wrote it)."""
    choices: Sequence[str] = info.get("choices") or ()
    return AnswerSpec(
        answer=str(info.get("answer") or ground_truth),
        question_type=str(info.get("question_type") or "free_form"),
        answer_type=str(info.get("answer_type") or "text"),
        choices=tuple(str(c) for c in choices),
        answer_letter=info.get("answer_letter"),
        precision=info.get("precision"),
        unit=info.get("unit"),
    )
