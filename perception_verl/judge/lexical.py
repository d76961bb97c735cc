"""An offline perception judge with no LLM: a fact counts if its key tokens appear in the response.

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
3. The verdict is 1 when every key token is present in the response. An annotation with no key
   token at all falls back to content-word overlap: 1 when at least 60% of its content words
   (stop words removed, plural ``s`` stripped) occur in the response.

Limits, honestly: it is a bag-of-tokens test. It does not bind tokens to each other
(``angle ABC = 180 - 71`` "contains" ``angle ABC is 71 degrees``), handles no negation
("AB is not parallel to CD" counts as parallel), knows no synonyms beyond its small lists
(``r = 5`` is not ``the radius is 5``; ``0.5`` is not ``1/2``), does not evaluate or reorder
algebra (``-6 + 3f`` is not ``3f - 6``; ``3 f`` is not ``3f``), and reads no image. In the
response every upper-case word counts as a point name, so a sentence-initial "A" can stand in
for point A. A response that merely lists or quotes the facts' tokens ("say that JKLM is a
parallelogram") gets credit: the repetition penalty, not this judge, is what discourages that.
It is meant for CPU runs, tests and as a cheap baseline, not as a substitute for the LLM judge.
"""

from __future__ import annotations

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
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PURE_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_VARIABLE = re.compile(r"[b-z]")
_LETTERS = re.compile(r"[A-Za-z]+")

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

    @property
    def empty(self) -> bool:
        return not (
            self.numbers or self.expressions or self.variables or self.groups or self.angles or self.relations
        )


@dataclass
class _Features:
    """What a response offers: its numbers, names, concepts and words; the compact math text on demand."""

    lower: str
    numbers: set[str]
    variables: set[str]
    groups: set[str]
    angles: set[str]
    angle_vertices: set[str]
    concepts: set[str]
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
    )
    if keys.empty and concepts & _SHAPES:
        keys = replace(keys, relations=frozenset(concepts & _SHAPES))
    return keys


def _strip_injected(text: str) -> str:
    if NEUTRAL_OPEN in text:
        text = _TAG_BLOCK.sub(" ", text)
        text = _TAG_PAIR.sub(" ", text)
        text = _TAG_ANY.sub(" ", text)
    return OMISSION.sub("\n", text) if "omitted" in text else text


def _response_features(response: str, max_chars: int) -> _Features:
    text = _normalize(_strip_injected(sanitize_response(response, max_chars)))
    angles: set[str] = set()
    vertices: set[str] = set()
    for _, name in _angle_names(text):
        angles.add(_angle_key(name))
        if len(name) == 3:
            vertices.add(name[1])
        elif len(name) == 1:
            vertices.add(name)
    tokens = set(_LETTERS.findall(text))
    words = {token.lower() for token in tokens}
    lower = text.lower()
    numbers = {_canonical_number(token) for token in set(_NUMBER.findall(text))}
    concepts = _concepts(lower, words)
    if "perpendicular" in concepts or ("90" in numbers and "degrees" in words):
        concepts.add("right")
    if "right" in concepts:
        numbers.add("90")
    return _Features(
        lower=lower,
        numbers=numbers,
        variables={token for token in tokens if len(token) == 1 and token.islower() and token != "a"},
        groups={_dihedral(token) for token in tokens if len(token) <= 6 and token.isupper()},
        angles=angles,
        angle_vertices=vertices,
        concepts=concepts,
        words=words,
    )


def _has_expression(compact: str, expression: str) -> bool:
    start = compact.find(expression)
    while start >= 0:
        end = start + len(expression)
        before = compact[start - 1] if start else " "
        after = compact[end : end + 2]
        continues = after[:1].isalnum() or (after[:1] == "." and after[1:2].isdigit())
        if not (before.isalnum() or before == ".") and not continues:
            return True
        start = compact.find(expression, start + 1)
    return False


def _angle_present(name: str, features: _Features) -> bool:
    if name in features.angles:
        return True
    return len(name) == 1 and name.isalpha() and name in features.angle_vertices


def _verdict(keys: _Keys, features: _Features) -> int:
    if keys.empty:
        if not keys.content_words:
            return 0
        found = len(keys.content_words & _content_words(features.words))
        return int(found / len(keys.content_words) >= FALLBACK_OVERLAP)
    present = (
        keys.numbers <= features.numbers
        and keys.variables <= features.variables
        and keys.groups <= features.groups
        and keys.relations <= features.concepts
        and all(_angle_present(name, features) for name in keys.angles)
        and all(_has_expression(features.compact, expression) for expression in keys.expressions)
    )
    return int(present)


def lexical_verdicts(annotations: Sequence[str], response: str, *, max_chars: int = 6000) -> tuple[int, ...]:
    """One 0/1 per annotation: 1 when the (sanitised) response holds all of that fact's key tokens."""
    if isinstance(annotations, str):
        raise TypeError("annotations must be a sequence of strings, not a single string")
    if not annotations:
        return ()
    features = _response_features(response, max_chars)
    return tuple(_verdict(_annotation_keys(annotation), features) for annotation in annotations)


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
