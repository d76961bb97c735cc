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

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

from perception_verl.judge.base import JudgeResult
from perception_verl.judge.sanitize import (
    MIN_MAX_CHARS,
    NEUTRAL_CLOSE,
    NEUTRAL_OPEN,
    OMISSION,
    sanitize_response,
)

FALLBACK_OVERLAP = 0.6
SPAN_BASE = 6
SPAN_PER_KEY = 4
"""A fact's key tokens must lie within ``SPAN_BASE + SPAN_PER_KEY * (keys - 1)`` tokens of one
another (plus the length of any expression among them), inside one sentence."""
NEGATION_LOOKBACK = 3
"""Tokens before a fact's first key token in which a negation still denies it (up to a comma or a
conjunction)."""
DECOY_LIMIT = 0.25
DECOY_MIN_HITS = 2
"""A response that states at least ``DECOY_MIN_HITS`` decoy facts and at least ``DECOY_LIMIT`` of
all decoys (facts one key token away from the real ones) is treated as stuffing: no fact counts."""

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u2012": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2014": " ",  # em dash: prose
    "\uff1d": "=",
    "\u2220": " angle ",  # ∠
    "\u2221": " angle ",  # ∡
    "\u25b3": " triangle ",  # △
    "\u25b5": " triangle ",
    "\u0394": " triangle ",  # Δ
    "\u2206": " triangle ",
    "\u2225": " parallel ",  # ∥
    "\u2016": " parallel ",  # ‖
    "\u22a5": " perpendicular ",  # ⊥
    "\u27c2": " perpendicular ",
    "\u2245": " congruent ",  # ≅
    "\u223c": " similar ",  # ∼
    "\u00b0": " degrees ",  # °
    "\u00ba": " degrees ",
    "\u2299": " circle ",  # ⊙
    "\u221a": " sqrt ",  # √
    "\u00d7": "*",
    "\u00b7": "*",
    "\u22c5": "*",
    "\u03c0": " pi ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2260": " not equal ",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2248": " approximately ",
}

_UNICODE_CHAR = re.compile("[" + re.escape("".join(_UNICODE)) + "]")

_LATEX_WORDS = {
    "angle": " angle ",
    "measuredangle": " angle ",
    "triangle": " triangle ",
    "bigtriangleup": " triangle ",
    "parallel": " parallel ",
    "perp": " perpendicular ",
    "bot": " perpendicular ",
    "cong": " congruent ",
    "sim": " similar ",
    "odot": " circle ",
    "circledcirc": " circle ",
    "circ": " degrees ",
    "degree": " degrees ",
    "cdot": "*",
    "times": "*",
    "pi": " pi ",
    "neq": " not equal ",
    "ne": " not equal ",
    "approx": " approximately ",
    "le": "<=",
    "leq": "<=",
    "ge": ">=",
    "geq": ">=",
    "sqrt": " sqrt ",
    "overarc": " arc ",
    "overparen": " arc ",
    "wideparen": " arc ",
    "arc": " arc ",
}

_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)|\\[,;:! ]|\\[()\[\]]")
_DOUBLE_BAR = re.compile(r"(?<=[A-Z])\s*\|\|\s*(?=[A-Z])")
_SQRT = re.compile(r"sqrt\s*(?:\{([^{}]*)\}|\(([^()]*)\)|(\d+(?:\.\d+)?|[A-Za-z]\b))")

# A neutralised verdict-tag block ("‹info1›1‹/info1›") and its content, then any leftover tag.
_TAG_BLOCK = re.compile(
    rf"{NEUTRAL_OPEN}\s*info\s*(\d+)[^{NEUTRAL_CLOSE}\n]*{NEUTRAL_CLOSE}"
    rf".*?{NEUTRAL_OPEN}\s*/\s*info\s*\1[^{NEUTRAL_CLOSE}\n]*{NEUTRAL_CLOSE}",
    re.IGNORECASE | re.DOTALL,
)
# Any neutralised opening tag and its matching closing tag (look-alike spellings: "‹ınfo1›...‹/ınfo1›").
_TAG_PAIR = re.compile(
    rf"{NEUTRAL_OPEN}([^{NEUTRAL_CLOSE}/\n]{{1,200}}?){NEUTRAL_CLOSE}.*?{NEUTRAL_OPEN}\s*/\s*\1{NEUTRAL_CLOSE}",
    re.DOTALL,
)
_TAG_ANY = re.compile(rf"{NEUTRAL_OPEN}[^{NEUTRAL_CLOSE}\n]{{0,200}}{NEUTRAL_CLOSE}?")

# The compact view drops the (single) space before or after an operator or inside parentheses.
_SPACE_BEFORE_OPERATOR = re.compile(r" (?=[-+*/^=<>)])")
_SPACE_AFTER_OPERATOR = re.compile(r"(?<=[-+*/^=<>(]) ")
_SQRT_BRACE = re.compile(r"\\sqrt\s*\{")
_DEGREE_MARK = re.compile(r"\^\s*\{?\s*(?:\\circ|o)\s*\}?(?![A-Za-z])")
_MATH_WORD = re.compile(r"[0-9a-z.+\-*/^=()<>]+")
_PURE_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_VARIABLE = re.compile(r"[b-z]")
_TOKEN = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n[ \t]*\n")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|cannot|none|nothing)\b|n['\u2019]t\b")
_NEGATION_WORDS = frozenset({"not", "no", "never", "neither", "nor", "cannot", "none", "nothing"})
_CONTRAST_WORDS = frozenset({"but", "and", "so", "however", "whereas", "while", "then", "thus", "hence"})
_PAUSE = frozenset(",:;")

# "ngle" first gives the regex engine a literal to scan for; the caller checks the "a"/"A" before it.
_ANGLE_NAME = re.compile(r"ngles?\s+(?:of\s+)?([A-Z]{1,3}|\d+)(?![A-Za-z0-9])")
_POINT_GROUP = re.compile(r"(?<![A-Za-z0-9_])([A-Z]{1,6})(?![A-Za-z0-9_])")

# Relation words: concept -> the single words (full match, lower case) that express it.
_RELATION_WORDS = {
    "parallel": r"parallels?",
    "parallelogram": r"parallelograms?",
    "perpendicular": r"perpendicular(?:s|ly|ity)?",
    "tangent": r"tangen(?:t|ts|cy|tial|tially)",
    "diameter": r"diameters?",
    "radius": r"radi(?:us|i|uses)",
    "chord": r"chords?",
    "secant": r"secants?",
    "arc": r"arcs?",
    "sector": r"sectors?",
    "semicircle": r"semicircles?|semicircular",
    "circumference": r"circumferences?",
    "bisect": r"bisect[a-z]*",
    "congruent": r"congruen(?:t|ce|cy)",
    "similar": r"similar(?:ity|ly)?",
    "equilateral": r"equilateral",
    "isosceles": r"isosceles",
    "scalene": r"scalene",
    "midpoint": r"midpoints?",
    "median": r"medians?",
    "altitude": r"altitudes?",
    "hypotenuse": r"hypotenuses?",
    "perimeter": r"perimeters?",
    "area": r"areas?",
    "diagonal": r"diagonals?",
    "inscribed": r"inscrib[a-z]*",
    "circumscribed": r"circumscrib[a-z]*",
    "rectangle": r"rectang[a-z]*",
    "rhombus": r"rhomb(?:us|i|uses)",
    "trapezoid": r"trapez(?:oid|oids|ium|iums|ia)",
    "kite": r"kites?",
    "center": r"cent(?:er|re)(?:s|d|ed)?",
    "regular": r"regular",
    "supplementary": r"supplementary",
    "complementary": r"complementary",
    "collinear": r"collinear(?:ity)?",
    "concentric": r"concentric",
}
# Shape words: key tokens only for an annotation with no other key token.
_SHAPE_WORDS = {
    "triangle": r"triangles?",
    "circle": r"circles?",
    "quadrilateral": r"quadrilaterals?",
    "pentagon": r"pentagons?",
    "hexagon": r"hexagons?",
    "polygon": r"polygons?",
    "angle": r"angles?",
    "line": r"lines?",
    "segment": r"segments?",
    "ray": r"rays?",
    "point": r"points?",
}
_CONCEPT_WORD = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern in {**_RELATION_WORDS, **_SHAPE_WORDS}.items())
)
_SHAPES = frozenset(_SHAPE_WORDS)
# Relations spelled with more than one word: (trigger word, concept, pattern on the lower-case text).
_PHRASES = (
    ("right", "right", re.compile(r"\bright[\s-]*(?:angle|angled|triangle)")),
    ("vertical", "vertical", re.compile(r"\bvertical(?:ly)?[\s-]+(?:opposite[\s-]+)?angles?\b")),
    ("square", "square", re.compile(r"\bsquare\b(?!\s*root)")),
    ("squares", "square", re.compile(r"\bsquares\b")),
    ("mid", "midpoint", re.compile(r"\bmid[\s-]points?\b")),
    ("semi", "semicircle", re.compile(r"\bsemi[\s-]circle")),
)

_ALPHA = re.compile(r"[a-z]+")
_STOP_TEXT = (
    "the and are for that this with from into onto its has have had was were will been being "
    "which what when where who whom whose there their then than them they these those such "
    "figure diagram image picture shown shows show given also each both all any some "
    "not but can may might must should would could does did done very more most other"
)
_STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class _Keys:
    """What an annotation requires the response to contain (see the module docstring)."""

    numbers: frozenset[str]
    expressions: tuple[str, ...]
    variables: frozenset[str]
    groups: frozenset[str]
    angles: frozenset[str]
    relations: frozenset[str]
    content_words: frozenset[str]
    negated: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.numbers or self.expressions or self.variables or self.groups or self.angles or self.relations
        )


Atom = tuple[str, str]
"""A positioned key token of a response: ("n", number), ("x", variable), ("g", points), ("a", angle),
("v", angle vertex) or ("c", concept)."""


@dataclass
class _Clause:
    """One sentence of a response: where each atom occurs (token indices), and what may negate it."""

    lower: str
    occurrences: dict[Atom, list[int]]
    negations: list[int]
    pauses: set[int]
    words: set[str]

    @cached_property
    def compact(self) -> str:
        return _compact(self.lower)


def _unicode_char(match: re.Match[str]) -> str:
    return _UNICODE[match.group()]


def _latex_command(match: re.Match[str]) -> str:
    name = match.group(1)
    if name is None:
        return " "
    return _LATEX_WORDS.get(name, " ")


def _frac(match: re.Match[str]) -> str:
    top, bottom = match.group(1).strip(), match.group(2).strip()
    top = top if top.isalnum() else f"({top})"
    bottom = bottom if bottom.isalnum() else f"({bottom})"
    return f" {top}/{bottom} "


def _sqrt(match: re.Match[str]) -> str:
    inner = next(group for group in match.groups() if group is not None)
    return f"sqrt({inner.strip()})"


def _normalize(text: str) -> str:
    """Unify notation; keeps case (point names are upper case)."""
    for _ in range(3):
        text, count = _FRAC.subn(_frac, text)
        if not count:
            break
    text = text.replace("$", " ")
    if not text.isascii():
        text = _UNICODE_CHAR.sub(_unicode_char, text)
    if "^" in text:
        text = _DEGREE_MARK.sub(" degrees ", text)
    if "\\" in text:
        text = _LATEX_COMMAND.sub(_latex_command, _SQRT_BRACE.sub(" sqrt{", text))
    if "||" in text:
        text = _DOUBLE_BAR.sub(" parallel ", text)
    if "sqrt" in text:
        text = _SQRT.sub(_sqrt, text)
    return text.replace("{", " ").replace("}", " ")


def _compact(lower: str) -> str:
    """Single-spaced text without spaces around operators or inside parentheses (``3f - 6`` -> ``3f-6``)."""
    text = _SPACE_AFTER_OPERATOR.sub("", _SPACE_BEFORE_OPERATOR.sub("", " ".join(lower.split())))
    return _drop_implicit_times(text) if "*" in text else text


def _drop_implicit_times(text: str) -> str:
    """``3*f`` -> ``3f`` and ``2*(x+1)`` -> ``2(x+1)``; ``2*3`` stays."""
    parts = text.split("*")
    out = [parts[0]]
    for before, after in itertools.pairwise(parts):
        implicit = before[-1:].isdigit() and (after[:1].isalpha() or after[:1] == "(")
        out.append(after if implicit else "*" + after)
    return "".join(out)


def _strip_parentheses(expression: str) -> str:
    """``(2x+10)`` -> ``2x+10``, but ``(a+b)(a-b)`` stays."""
    while expression.startswith("(") and expression.endswith(")"):
        depth = 0
        for index, char in enumerate(expression):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(expression) - 1:
                return expression
        expression = expression[1:-1]
    return expression


def _canonical_number(token: str) -> str:
    token = token.lstrip("+-")
    if "." in token:
        token = token.rstrip("0").rstrip(".")
    return token.lstrip("0") or "0"


@lru_cache(maxsize=65536)
def _dihedral(name: str) -> str:
    variants = [name[i:] + name[:i] for i in range(len(name))]
    reverse = name[::-1]
    variants += [reverse[i:] + reverse[:i] for i in range(len(reverse))]
    return min(variants)


def _angle_key(name: str) -> str:
    return min(name, name[::-1])


def _angle_names(text: str) -> list[tuple[int, str]]:
    """(position, name) of each ``angle XYZ`` / ``angle 1`` in ``text`` (``Angle`` and ``angles`` too)."""
    found = []
    for match in _ANGLE_NAME.finditer(text):
        start = match.start()
        if start and text[start - 1] in "aA" and not (start > 1 and text[start - 2].isalpha()):
            found.append((match.start(1), match.group(1)))
    return found


def _starts_sentence(text: str, position: int) -> bool:
    index = position - 1
    while index >= 0 and text[index] in " \t":
        index -= 1
    return index < 0 or text[index] in ".!?:;\n"


def _point_groups(text: str, skip: set[int]) -> set[str]:
    groups: set[str] = set()
    for match in _POINT_GROUP.finditer(text):
        if match.start() in skip:
            continue
        name = match.group(1)
        if name in ("A", "I") and _starts_sentence(text, match.start()):
            continue
        groups.add(_dihedral(name))
    return groups


@lru_cache(maxsize=65536)
def _word_concept(word: str) -> str | None:
    match = _CONCEPT_WORD.fullmatch(word)
    return match.lastgroup if match else None


def _concepts(lower: str, words: set[str]) -> set[str]:
    concepts = {concept for concept in map(_word_concept, words) if concept is not None}
    for trigger, concept, pattern in _PHRASES:
        if trigger in words and concept not in concepts and pattern.search(lower):
            concepts.add(concept)
    return concepts


def _content_words(words: set[str] | frozenset[str]) -> frozenset[str]:
    kept = (word for word in words if len(word) > 2 and word not in _STOP_WORDS)
    return frozenset(word[:-1] if word.endswith("s") else word for word in kept)


@lru_cache(maxsize=16384)
def _annotation_keys(annotation: str) -> _Keys:
    text = _normalize(annotation)
    angle_starts: set[int] = set()
    angles: set[str] = set()
    for position, name in _angle_names(text):
        angle_starts.add(position)
        angles.add(_angle_key(name))
    groups = _point_groups(text, angle_starts)
    lower = text.lower()
    compact = _compact(lower)

    numbers: set[str] = set()
    expressions: list[str] = []
    variables: set[str] = set()
    for word in _MATH_WORD.findall(compact):
        for side in word.split("="):
            side = side.strip(".")
            if not side:
                continue
            if _PURE_NUMBER.fullmatch(side):
                numbers.add(_canonical_number(side))
            elif any(ch.isdigit() for ch in side):
                side = _strip_parentheses(side)
                if side not in expressions:
                    expressions.append(side)
            elif "=" in word and _VARIABLE.fullmatch(side):
                variables.add(side)
    for label in [a for a in angles if a.isdigit()]:
        numbers.discard(label)

    words = set(_ALPHA.findall(lower))
    concepts = _concepts(lower, words)
    keys = _Keys(
        numbers=frozenset(numbers),
        expressions=tuple(expressions),
        variables=frozenset(variables),
        groups=frozenset(groups),
        angles=frozenset(angles),
        relations=frozenset(concepts - _SHAPES),
        content_words=_content_words(words),
        negated=_NEGATION.search(lower) is not None,
    )
    if keys.empty and concepts & _SHAPES:
        keys = replace(keys, relations=frozenset(concepts & _SHAPES))
    return keys


def _strip_injected(text: str) -> str:
    if NEUTRAL_OPEN in text:
        text = _TAG_BLOCK.sub(" ", text)
        text = _TAG_PAIR.sub(" ", text)
        text = _TAG_ANY.sub(" ", text)
    return OMISSION.sub("\n\n", text) if "omitted" in text else text


def _token_index(starts: list[int], position: int) -> int:
    """Index of the token at or before character ``position`` (0 before the first token)."""
    return max(bisect.bisect_right(starts, position) - 1, 0)


def _clause(text: str) -> _Clause:
    """The positioned atoms of one sentence (``text`` already normalised)."""
    matches = list(_TOKEN.finditer(text))
    starts = [m.start() for m in matches]
    lower = text.lower()
    occurrences: dict[Atom, list[int]] = {}

    def add(atom: Atom, index: int) -> None:
        occurrences.setdefault(atom, []).append(index)

    negations: list[int] = []
    pauses: set[int] = set()
    words: set[str] = set()
    for index, match in enumerate(matches):
        token = match.group()
        end = match.end()
        if token[0].isdigit():
            number = _canonical_number(token)
            add(("n", number), index)
            if number == "90" and "degree" in lower[end : end + 12]:
                add(("c", "right"), index)
            continue
        word = token.lower()
        words.add(word)
        if token.isupper() and len(token) <= 6:
            add(("g", _dihedral(token)), index)
        if len(token) == 1 and token.islower() and token != "a":
            add(("x", token), index)
        concept = _word_concept(word)
        if concept is not None:
            add(("c", concept), index)
            if concept == "perpendicular":
                add(("c", "right"), index)
        if word in _NEGATION_WORDS or lower[end : end + 2] in ("'t", "\u2019t"):
            negations.append(index)
        if word in _CONTRAST_WORDS:
            pauses.add(index)
        following = text[end : starts[index + 1]] if index + 1 < len(starts) else ""
        if _PAUSE.intersection(following):
            pauses.add(index)
    for trigger, concept, pattern in _PHRASES:
        if trigger in words:
            for match in pattern.finditer(lower):
                add(("c", concept), _token_index(starts, match.start()))
    for index in occurrences.get(("c", "right"), ()):
        add(("n", "90"), index)
    for position, name in _angle_names(text):
        index = _token_index(starts, position)
        add(("a", _angle_key(name)), index)
        if len(name) == 3:
            add(("v", name[1]), index)
        elif len(name) == 1:
            add(("v", name), index)
    return _Clause(lower, occurrences, negations, pauses, words)


def _response_clauses(response: str, max_chars: int) -> list[_Clause]:
    text = _normalize(_strip_injected(sanitize_response(response, max_chars)))
    return [_clause(part) for part in _SENTENCE_END.split(text) if part.strip()]


def _expression_spans(clause: _Clause, expression: str) -> list[tuple[int, int]]:
    """(first, last) token index of each occurrence of ``expression`` at token boundaries."""
    compact = clause.compact
    spans = []
    start = compact.find(expression)
    while start >= 0:
        end = start + len(expression)
        before = compact[start - 1] if start else " "
        after = compact[end : end + 2]
        continues = after[:1].isalnum() or (after[:1] == "." and after[1:2].isdigit())
        if not (before.isalnum() or before == ".") and not continues:
            first = len(_TOKEN.findall(compact[:start]))
            spans.append((first, max(first, first + len(_TOKEN.findall(expression)) - 1)))
        start = compact.find(expression, start + 1)
    return spans


@lru_cache(maxsize=65536)
def _atom_options(keys: _Keys) -> tuple[tuple[Atom, ...], ...]:
    """Per key token (expressions aside), the atoms that satisfy it (``angle B``: the angle or vertex B)."""
    options: list[tuple[Atom, ...]] = [(("n", n),) for n in sorted(keys.numbers)]
    options += [(("x", v),) for v in sorted(keys.variables)]
    options += [(("g", g),) for g in sorted(keys.groups)]
    options += [(("c", r),) for r in sorted(keys.relations)]
    for name in sorted(keys.angles):
        options.append((("a", name), ("v", name)) if len(name) == 1 and name.isalpha() else (("a", name),))
    return tuple(options)


def _requirements(keys: _Keys, clause: _Clause) -> list[list[tuple[int, int]]] | None:
    """Per key token, the (first, last) token spans where the clause has it; ``None`` if one is absent."""
    found: list[list[tuple[int, int]]] = []
    occurrences = clause.occurrences
    for options in _atom_options(keys):
        spans = [(i, i) for atom in options for i in occurrences.get(atom, ())]
        if not spans:
            return None
        found.append(spans)
    for expression in keys.expressions:
        spans = _expression_spans(clause, expression)
        if not spans:
            return None
        found.append(spans)
    return found


def _negated(clause: _Clause, first: int, last: int) -> bool:
    """A negation inside ``first..last``, or just before it with no comma or conjunction in between."""
    for index in clause.negations:
        if first <= index <= last:
            return True
        if first - NEGATION_LOOKBACK <= index < first and not any(
            index <= pause < first for pause in clause.pauses
        ):
            return True
    return False


def _stated_in(keys: _Keys, clause: _Clause) -> bool:
    """The clause holds all of the fact's key tokens close together, negated exactly when the fact is."""
    if keys.empty:
        if not keys.content_words:
            return False
        found = len(keys.content_words & _content_words(clause.words))
        negated = bool(clause.negations)
        return found / len(keys.content_words) >= FALLBACK_OVERLAP and negated == keys.negated
    needed = _requirements(keys, clause)
    if needed is None:
        return False
    budget = SPAN_BASE + SPAN_PER_KEY * (len(needed) - 1)
    anchors = min(needed, key=len)
    for anchor in anchors:
        centre = (anchor[0] + anchor[1]) / 2
        chosen = [min(spans, key=lambda span: abs((span[0] + span[1]) / 2 - centre)) for spans in needed]
        first = min(span[0] for span in chosen)
        last = max(span[1] for span in chosen)
        extra = sum(span[1] - span[0] for span in chosen)
        if last - first <= budget + extra and _negated(clause, first, last) == keys.negated:
            return True
    return False


def _stated(keys: _Keys, clauses: Sequence[_Clause]) -> bool:
    return any(_stated_in(keys, clause) for clause in clauses)


_ROT = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
_RELATION_SWAP = {
    "parallel": "perpendicular",
    "perpendicular": "parallel",
    "parallelogram": "trapezoid",
    "trapezoid": "kite",
    "tangent": "secant",
    "secant": "tangent",
    "diameter": "radius",
    "radius": "diameter",
    "chord": "tangent",
    "congruent": "similar",
    "similar": "congruent",
    "isosceles": "scalene",
    "equilateral": "isosceles",
    "scalene": "equilateral",
    "inscribed": "circumscribed",
    "circumscribed": "inscribed",
    "rectangle": "rhombus",
    "rhombus": "rectangle",
    "square": "rhombus",
    "supplementary": "complementary",
    "complementary": "supplementary",
    "perimeter": "area",
    "area": "perimeter",
    "median": "altitude",
    "altitude": "median",
    "bisect": "perpendicular",
    "midpoint": "altitude",
    "center": "tangent",
    "right": "isosceles",
    "triangle": "pentagon",
    "circle": "hexagon",
    "quadrilateral": "hexagon",
}


def _other_number(number: str, step: int) -> str:
    if "." in number:
        return _canonical_number(repr(float(number) + step))
    return str(int(number) + step)


@lru_cache(maxsize=16384)
def _decoys(keys: _Keys) -> tuple[_Keys, ...]:
    """Facts one key token away from ``keys`` (another number, point name, angle or relation): what a
    response that lists tokens rather than stating facts also "states"."""
    if keys.empty:
        return ()
    out: list[_Keys] = []
    for number in sorted(keys.numbers):
        for step in (3, 17):
            out.append(replace(keys, numbers=(keys.numbers - {number}) | {_other_number(number, step)}))
    for group in sorted(keys.groups):
        other = _dihedral(group.translate(_ROT))
        if other not in keys.groups:
            out.append(replace(keys, groups=(keys.groups - {group}) | {other}))
    for angle in sorted(keys.angles):
        other = _angle_key(angle.translate(_ROT))
        if other not in keys.angles:
            out.append(replace(keys, angles=(keys.angles - {angle}) | {other}))
    for variable in sorted(keys.variables):
        out.append(replace(keys, variables=(keys.variables - {variable}) | {variable.translate(_ROT)}))
    for relation in sorted(keys.relations):
        other = _RELATION_SWAP.get(relation)
        if other is not None and other not in keys.relations:
            out.append(replace(keys, relations=(keys.relations - {relation}) | {other}))
    return tuple(out)


def lexical_verdicts(annotations: Sequence[str], response: str, *, max_chars: int = 6000) -> tuple[int, ...]:
    """One 0/1 per annotation: 1 when one sentence of the (sanitised) response states that fact's key
    tokens close together and not negated, and the response is not a token list (decoy check)."""
    if isinstance(annotations, str):
        raise TypeError("annotations must be a sequence of strings, not a single string")
    if not annotations:
        return ()
    clauses = _response_clauses(response, max_chars)
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
