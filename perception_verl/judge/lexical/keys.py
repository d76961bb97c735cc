"""What an annotation requires (:class:`_Keys`): notation normalised, then its numbers, expressions,
variables, point names, angles and relation words."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from perception_verl.judge.lexical.vocabulary import (
    _ALPHA,
    _ANGLE_NAME,
    _CONCEPT_WORD,
    _DEGREE_MARK,
    _DOUBLE_BAR,
    _FRAC,
    _LATEX_COMMAND,
    _LATEX_WORDS,
    _MATH_WORD,
    _NEGATION,
    _PHRASES,
    _POINT_GROUP,
    _PURE_NUMBER,
    _SHAPES,
    _SPACE_AFTER_OPERATOR,
    _SPACE_BEFORE_OPERATOR,
    _SQRT,
    _SQRT_BRACE,
    _STOP_WORDS,
    _UNICODE,
    _UNICODE_CHAR,
    _VARIABLE,
)


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
