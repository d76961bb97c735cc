"""Accuracy reward: the boxed final answer compared with the ground truth by math-verify.

The answer is the text inside the last complete ``<answer>...</answer>`` block (the whole response when
there is none); from it the content of the last complete ``\\boxed{...}`` is taken (the answer text
itself when nothing is boxed) and compared with the ground truth by ``math_verify.parse`` and
``math_verify.verify``. Degree marks are removed from both sides first (math-verify reads ``71^\\circ``
but not ``71°`` or ``71\\degree`` inside ``\\boxed{}``).

math-verify's own timeouts use ``signal.alarm``, which only works in the main thread, so both calls run
with their timeouts disabled. What a timeout would have caught is bounded here instead: the text fed to
math-verify is capped in length, bracket nesting depth and number of ``|`` bars (its LaTeX parser
slows exponentially with those), and parsed expressions whose value would have too many digits to
compare quickly (``9^{9^{9}}``, ``1000000!``, ``e^{e^{e^{e}}}``) are refused before ``verify`` sees
them; symbolic constants (``e``, ``\\pi``, ``\\mathrm{e}``, ``\\exp``, ``\\cosh``) count with their real
magnitude. These limits are heuristics: the reward manager runs this check in worker processes
that a hard deadline stops (:mod:`perception_verl.workers.pool`).

A ground truth must be text with an answer in it: empty text and the placeholders ``None``, ``nan``,
``null`` (what ``str`` makes of a missing value) score 0 as ``bad_ground_truth`` and are never
compared, so ``\\boxed{None}`` cannot match a missing ground truth. Turn non-text values into text
with :func:`perception_verl.rewards.ground_truth.ground_truth_text`, never with ``str``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sympy
from math_verify import parse, verify

from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 500
"""Longest answer text handed to math-verify (longer boxed content scores 0 as ``too_long``)."""

MAX_BRACKET_DEPTH = 8
"""Deepest nesting of ``( [ {`` handed to math-verify (its LaTeX parser slows exponentially with depth)."""

MAX_BARS = 8
"""Most ``|`` / ``\\vert`` bars handed to math-verify (ambiguous absolute values slow its parser)."""

MAX_VALUE_DIGITS = 100_000.0
"""Most decimal digits (log10 of the magnitude) a parsed number may have before it is refused."""

_ANSWER_BLOCK = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_BOXED_OPEN = re.compile(r"\\boxed\s*\{")
_BARS = re.compile(r"\||\\[lr]?[vV]ert")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\(?:text)?degrees?(?![A-Za-z])")
_INTEGER = re.compile(r"-?\d{1,15}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy score (0.0 or 1.0), a short reason, and the answer text that was compared."""

    score: float
    reason: str
    predicted: str


def clean_text(text: str) -> str:
    """Replace lone surrogates with ``?`` and control characters (other than tab/newline) with spaces."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return _CONTROL.sub(" ", text)


def extract_answer(response: str) -> str:
    """Return the text inside the last complete ``<answer>...</answer>`` block, else the whole response."""
    blocks = _ANSWER_BLOCK.findall(response)
    return blocks[-1] if blocks else response


def _matching_braces(text: str) -> dict[int, int]:
    """Map each ``{`` index to its matching ``}`` index; backslash-escaped braces are literal."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            pairs[stack.pop()] = index
        index += 1
    return pairs


def extract_boxed(text: str) -> str | None:
    """Return the content of the last complete ``\\boxed{...}`` in ``text`` (nested braces allowed)."""
    opens = [match.end() - 1 for match in _BOXED_OPEN.finditer(text)]
    if not opens:
        return None
    pairs = _matching_braces(text)
    for brace in reversed(opens):
        close = pairs.get(brace)
        if close is not None:
            return text[brace + 1 : close]
    return None


def _log10_int(value: int) -> float:
    return math.log10(abs(value)) if value else 0.0


_LOG10_E = math.log10(math.e)
_CONSTANT_NAMES = {"e": _LOG10_E, "pi": math.log10(math.pi), "π": math.log10(math.pi)}
"""Symbols that math-verify leaves symbolic but a reader (and sympy's evaluation) takes as constants."""

_EXPONENTIAL = (sympy.exp, sympy.sinh, sympy.cosh)


def _constant_size(node: sympy.Basic) -> float | None:
    """log10 of a named constant (``E``, ``pi``, a symbol spelt ``e`` or ``pi``); None for anything else."""
    if isinstance(node, sympy.NumberSymbol):
        return max(math.log10(abs(float(node))), 0.0)
    if isinstance(node, sympy.Symbol):
        return _CONSTANT_NAMES.get(node.name)
    return None


def _numeric(node: sympy.Basic) -> bool:
    """True for a number, or an expression built only from numbers and named constants."""
    if node.is_number or _constant_size(node) is not None:
        return True
    return bool(node.args) and all(_numeric(arg) for arg in node.args)


def _log_size(node: object) -> float:
    """Upper estimate of log10 of the magnitude of a numeric sympy sub-expression (0 if symbolic).

    Rationals count their larger part (a huge denominator costs as much as a huge numerator);
    constants count their value (``e``: 0.43), so towers of them (``e^{e^{e^{e}}}``) grow as they would
    when evaluated.
    """
    if not isinstance(node, sympy.Basic):
        return 0.0
    constant = _constant_size(node)
    if constant is not None:
        return constant
    if isinstance(node, sympy.Rational):
        return max(_log10_int(int(node.p)), _log10_int(int(node.q)))
    if isinstance(node, sympy.Float):
        _, mantissa, exponent, _ = node._mpf_
        return abs(exponent + int(mantissa).bit_length()) * math.log10(2.0)
    sizes = [_log_size(arg) for arg in node.args]
    if isinstance(node, _EXPONENTIAL) and len(sizes) == 1:
        if not _numeric(node.args[0]):
            return sizes[0]
        return math.inf if sizes[0] > 300 else _LOG10_E * 10.0 ** sizes[0]
    if isinstance(node, sympy.Pow):
        base, exponent = sizes
        if not _numeric(node.base):
            return max(base, exponent)
        if isinstance(node.exp, sympy.Rational):
            exponent = _log10_int(int(node.exp.p)) - _log10_int(int(node.exp.q))
        if base == 0.0:
            return exponent
        return math.inf if exponent > 300 else base * 10.0**exponent
    if isinstance(node, (sympy.factorial, sympy.factorial2, sympy.gamma, sympy.binomial, sympy.subfactorial)):
        largest = max(sizes, default=0.0)
        return math.inf if largest > 300 else max(largest, 1.0) * 10.0**largest
    if isinstance(node, sympy.Mul):
        return sum(sizes)
    return max(sizes, default=0.0) + math.log10(max(len(sizes), 1))


def _too_complex(text: str) -> bool:
    """True when ``text`` nests brackets or stacks bars beyond what math-verify parses quickly."""
    if len(_BARS.findall(text)) > MAX_BARS:
        return True
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return True
        elif char in ")]}" and depth:
            depth -= 1
    return False


def _too_large(parsed: Iterable[object]) -> bool:
    return any(_log_size(item) > MAX_VALUE_DIGITS for item in parsed)


def strip_degrees(text: str) -> str:
    """Remove degree marks (``^\\circ``, ``^{\\circ}``, ``°``, ``\\degree``) before math-verify."""
    return _DEGREES.sub("", text)


def _wrap_ground_truth(ground_truth: str) -> str:
    text = ground_truth.strip()
    if "\\boxed" in text:
        return text
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return "\\boxed{" + text + "}"


def _compact(text: str) -> str:
    return "".join(text.strip().strip("$").split())


def _same_text(answer: str, truth: str) -> bool:
    """Identical answers up to whitespace and ``$`` delimiters: equal without asking math-verify."""
    compact = _compact(answer)
    return bool(compact) and compact == _compact(truth)


@functools.lru_cache(maxsize=4096)
def _parse_gold(truth: str) -> tuple[object, ...]:
    """math-verify's parse of a ground truth, cached: a GRPO group's rollouts share their ground truth."""
    return tuple(parse(_wrap_ground_truth(truth), parsing_timeout=None))


def _candidate(response: str) -> tuple[str, bool]:
    """The answer text to compare, and whether it came from a ``\\boxed{}``."""
    answer = extract_answer(response)
    boxed = extract_boxed(answer)
    if boxed is not None:
        return boxed.strip(), True
    return answer.strip()[-MAX_ANSWER_CHARS:], False


@dataclass(frozen=True)
class _Pending:
    """What math-verify still has to compare: the answer (and whether it was boxed) and the truth."""

    candidate: str
    answer: str
    boxed: bool
    truth: str


def _prepare(response: str, ground_truth: str) -> AccuracyResult | _Pending:
    """The result when string checks decide it (no answer, too long or complex, bad ground truth, the
    same text), else what math-verify must compare. Linear in the text; no sympy."""
    candidate, boxed = _candidate(clean_text(response))
    if not candidate:
        return AccuracyResult(0.0, "no_answer", "")
    if len(candidate) > MAX_ANSWER_CHARS:
        return AccuracyResult(0.0, "too_long", candidate[:MAX_ANSWER_CHARS])
    answer = strip_degrees(candidate).strip()
    if not answer:
        return AccuracyResult(0.0, "no_answer", candidate)
    if _too_complex(answer):
        return AccuracyResult(0.0, "too_complex", candidate)
    try:
        ground_truth_text(ground_truth)
    except GroundTruthError:
        return AccuracyResult(0.0, "bad_ground_truth", candidate)
    truth = strip_degrees(clean_text(ground_truth))
    if len(truth) > MAX_ANSWER_CHARS or _too_complex(truth):
        return AccuracyResult(0.0, "bad_ground_truth", candidate)
    if _same_text(answer, truth):
        return AccuracyResult(1.0, "correct", candidate)
    plain_answer, plain_truth = _compact(answer), _compact(truth)
    if _INTEGER.fullmatch(plain_answer) and _INTEGER.fullmatch(plain_truth):
        # Two integers: math-verify's verdict is their equality (``007`` is 7); no parse needed.
        same = int(plain_answer) == int(plain_truth)
        return AccuracyResult(float(same), "correct" if same else "mismatch", candidate)
    return _Pending(candidate, answer, boxed, truth)


def _score(response: str, ground_truth: str) -> AccuracyResult:
    pending = _prepare(response, ground_truth)
    if isinstance(pending, AccuracyResult):
        return pending
    candidate, answer, truth = pending.candidate, pending.answer, pending.truth
    gold = _parse_gold(truth)
    if not gold:
        return AccuracyResult(0.0, "bad_ground_truth", candidate)
    predicted = parse("\\boxed{" + answer + "}" if pending.boxed else answer, parsing_timeout=None)
    if not predicted:
        return AccuracyResult(0.0, "unparsable", candidate)
    if _too_large(gold) or _too_large(predicted):
        return AccuracyResult(0.0, "too_large", candidate)
    if verify(list(gold), predicted, timeout_seconds=None):
        return AccuracyResult(1.0, "correct", candidate)
    return AccuracyResult(0.0, "mismatch", candidate)


def settled_accuracy(response: str, ground_truth: str) -> AccuracyResult | None:
    """:func:`accuracy_reward`'s result when string checks alone decide it (no sympy, linear time: safe
    on the event loop), else ``None``: math-verify must decide, in a worker a deadline stops."""
    if not isinstance(response, str) or not isinstance(ground_truth, str):
        return None
    try:
        pending = _prepare(response, ground_truth)
    except Exception:
        return None
    return pending if isinstance(pending, AccuracyResult) else None


def accuracy_reward(response: str, ground_truth: str) -> AccuracyResult:
    """Score ``response`` against ``ground_truth``: 1.0 when math-verify finds them equal, else 0.0.

    Never raises: non-text input, unparsable answers and internal errors give 0.0 with a reason
    (``no_answer``, ``too_long``, ``too_complex``, ``bad_ground_truth``, ``unparsable``, ``too_large``,
    ``mismatch``, ``error:<ExceptionType>``); 1.0 comes with ``correct``. Safe in worker threads.
    """
    if not isinstance(response, str):
        return AccuracyResult(0.0, f"error:response is {type(response).__name__}", "")
    if not isinstance(ground_truth, str):
        return AccuracyResult(0.0, f"error:ground_truth is {type(ground_truth).__name__}", "")
    try:
        return _score(response, ground_truth)
    except Exception as exc:
        logger.debug("accuracy_reward failed", exc_info=True)
        return AccuracyResult(0.0, f"error:{type(exc).__name__}", "")
