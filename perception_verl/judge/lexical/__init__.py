"""An offline perception judge with no LLM: a fact counts if one sentence of the response states it.

How it decides, per annotation:

1. Both texts are normalised: the response is first passed through
   :func:`~perception_verl.judge.sanitize.sanitize_response`, then every verdict-tag block
   (``‹info1›1‹/info1›``, with whatever it wraps), stray tag and omission marker is deleted, so
   injected verdicts carry no tokens. LaTeX and Unicode notation is unified (``\\angle``/``∠`` ->
   ``angle``, ``\\triangle``/``△`` -> ``triangle``, ``\\parallel``/``∥`` -> ``parallel``,
   ``\\perp``/``⊥`` -> ``perpendicular``,
   ``^\\circ``/``°`` -> ``degrees``, ``\\frac{a}{b}`` -> ``a/b``, ``\\sqrt{3}``/``√3`` -> ``sqrt(3)``,
   Unicode minus and dashes -> ``-``, ``\\cdot``/``×`` -> ``*``, other LaTeX commands dropped).
2. Key tokens of the annotation are extracted:
   - numbers (``71``, ``2.50`` == ``2.5``);
   - expressions, compared with spaces around operators removed (``3f - 6`` -> ``3f-6``,
     ``3 \\cdot f`` -> ``3f``), and found in the response at token boundaries (``3f-6`` is not found
     in ``13f-60``);
   - single lower-case variables of an equation (``x`` in ``x = 5``);
   - point names: upper-case groups such as ``O``, ``JK``, ``ABC``, ``JKLM`` (a sentence-initial
     ``A`` or ``I`` in an annotation is read as a word, not a point), compared up to rotation and
     reversal (``JK`` == ``KJ``, ``JKLM`` == ``MLKJ``); after ``angle`` only the reversal counts
     (``angle ABC`` == ``angle CBA`` != ``angle BAC``), and ``angle B`` matches any angle at vertex B;
   - relation words from a fixed list (parallel, perpendicular, parallelogram, tangent, radius,
     diameter, bisect, congruent, similar, isosceles, equilateral, right angle, midpoint, ...), with
     light stemming and a few implications in the response (``perpendicular`` and ``90 degrees``
     imply ``right``; ``right angle`` implies the number 90);
   - shape words (triangle, circle, angle, line, ...) count only for an annotation that has no
     other key token.
3. The response is split into sentences (at ``. ! ? ;`` followed by white space, and at blank
   lines; a line break alone does not end a sentence). A fact is *stated* when one sentence holds
   all of its key tokens close together: within ``SPAN_BASE + SPAN_PER_KEY * (k - 1)`` tokens for
   ``k`` key tokens (6 for two, 10 for three; expressions count their own length on top), and not
   negated: no ``not``, ``no``, ``never``, ``neither``, ``nor``, ``cannot``, ``none``, ``n't`` or
   ``≠`` / ``\\neq`` (read as "not equal") between the first and last key token, nor in the
   ``NEGATION_LOOKBACK`` = 3 tokens before the first one unless a comma, colon or conjunction
   (``but``, ``and``, ``so``, ...) comes between ("AB is not 5, and CD = 12" states CD = 12). An
   annotation that is itself negated ("AB is not parallel to CD") needs a negated statement.
   An annotation with no key token at all falls back to content-word overlap within one sentence:
   at least 60% of its content words (stop words removed, plural ``s`` stripped).
4. Precision: every fact has *decoys*, the facts one key token away from it (the number + 3 and
   + 17, the point names shifted by 13 letters, ``JK`` -> ``WX``, the angle likewise, a contrasting
   relation: parallel -> perpendicular, radius -> diameter, ...). A response that lists tokens
   states decoys as readily as facts; an honest one rarely states any. When the response states at
   least ``DECOY_MIN_HITS`` = 2 decoys and at least ``DECOY_LIMIT`` = 25% of all decoys, no fact
   counts; and a fact more than half of whose own decoys are stated does not count.

Against the stuffers of ``tests/test_judge_lexical_stuffing.py`` (3 kB of numbers, capital-letter
pairs, "angle A".."angle Z", ABCD runs and relation words, in sections, interleaved at random, or as
short one-token-away "statements") this gives at most 1 of 3 facts and 0-10% of a 30-fact bank
(the bag-of-tokens judge it replaces gave up to 2 of 3 and 43%), while the honest statement keeps
3 of 3 and denials get 0.

Limits, honestly: it is still token matching, now local. A stuffer that writes each fact as its own
short sentence is stating it and gets credit (e.g. "ABCD is a square." among 200 such sentences)
unless the decoy check catches the neighbours it also writes; random token soup still hits a fact
now and then where its tokens happen to fall together (seen: 1 of 3 on one of five seeds). The
window is a token count, so an honest but long-winded sentence ("AB, which we found earlier from
the similar triangles, is ... 12") can miss; a negation anywhere between a fact's tokens denies it
("AB is not 5 but 12" does not state AB = 12); sarcasm, conditionals ("if AB = 12 then ...") and
questions still count; the decoy check can zero an honest answer that states many near-miss facts
in one place (a table of values). It does not bind tokens to roles (``angle ABC = 180 - 71``
"contains" ``angle ABC is 71 degrees``), knows no synonyms beyond its small lists (``r = 5`` is not
``the radius is 5``; ``0.5`` is not ``1/2``), does not evaluate or reorder algebra
(``-6 + 3f`` is not ``3f - 6``; ``3 f`` is not ``3f``), and reads no image. In the response every
upper-case word counts as a point name, so a sentence-initial "A" can stand in for point A. It is
meant for CPU runs, tests and as a cheap baseline, not as a substitute for the LLM judge.
"""

from __future__ import annotations

from collections.abc import Sequence

from perception_verl.judge.base import JudgeResult
from perception_verl.judge.lexical.clauses import _response, _stated
from perception_verl.judge.lexical.decoys import _decoys
from perception_verl.judge.lexical.keys import _annotation_keys
from perception_verl.judge.lexical.vocabulary import DECOY_LIMIT, DECOY_MIN_HITS
from perception_verl.judge.sanitize import MIN_MAX_CHARS


def lexical_verdicts(annotations: Sequence[str], response: str, *, max_chars: int = 6000) -> tuple[int, ...]:
    """One 0/1 per annotation: 1 when one sentence of the (sanitised) response states that fact's key
    tokens close together and not negated, and the response is not a token list (decoy check)."""
    if isinstance(annotations, str):
        raise TypeError("annotations must be a sequence of strings, not a single string")
    if not annotations:
        return ()
    clauses = _response(response, max_chars)
    keys = [_annotation_keys(annotation) for annotation in annotations]
    stated = [_stated(key, clauses) for key in keys]
    if not any(stated):
        return (0,) * len(keys)
    decoys_stated = [[_stated(decoy, clauses) for decoy in _decoys(key)] for key in keys]
    hits = sum(sum(found) for found in decoys_stated)
    tried = sum(len(found) for found in decoys_stated)
    if hits >= DECOY_MIN_HITS and hits >= DECOY_LIMIT * tried:
        return (0,) * len(keys)
    # A fact most of whose own decoys are stated as well is listed, not stated.
    return tuple(
        int(ok and 2 * sum(found) <= len(found)) for ok, found in zip(stated, decoys_stated, strict=True)
    )


class LexicalJudge:
    """:class:`~perception_verl.judge.base.Judge` backed by :func:`lexical_verdicts` (no network)."""

    def __init__(self, max_response_chars: int = 6000) -> None:
        if max_response_chars < MIN_MAX_CHARS:
            raise ValueError(f"max_response_chars must be at least {MIN_MAX_CHARS}, got {max_response_chars}")
        self.max_response_chars = max_response_chars

    def __repr__(self) -> str:
        return f"LexicalJudge(max_response_chars={self.max_response_chars})"

    async def start(self) -> None:
        """Nothing to check: the lexical judge has no server."""

    async def judge(self, annotations: Sequence[str], response: str) -> JudgeResult:
        verdicts = lexical_verdicts(annotations, response, max_chars=self.max_response_chars)
        return JudgeResult(verdicts=verdicts, requests=0)

    async def close(self) -> None:
        """Nothing to release."""


__all__ = ["LexicalJudge", "lexical_verdicts"]
