"""Where a response states things: its sentences (:class:`_Clause`, positioned key tokens) and whether
one of them states a fact's keys close together and not negated."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property, lru_cache

from perception_verl.judge.lexical.keys import (
    Atom,
    _angle_key,
    _angle_names,
    _canonical_number,
    _compact,
    _content_words,
    _dihedral,
    _Keys,
    _normalize,
    _word_concept,
)
from perception_verl.judge.lexical.vocabulary import (
    _CONTRAST_WORDS,
    _NEGATION_WORDS,
    _PAUSE_MARK,
    _PHRASES,
    _SENTENCE_END,
    _TAG_ANY,
    _TAG_BLOCK,
    _TAG_PAIR,
    _TOKEN,
    FALLBACK_OVERLAP,
    NEGATION_LOOKBACK,
    SPAN_BASE,
    SPAN_PER_KEY,
)
from perception_verl.judge.sanitize import NEUTRAL_OPEN, OMISSION, sanitize_response


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


def _strip_injected(text: str) -> str:
    if NEUTRAL_OPEN in text:
        text = _TAG_BLOCK.sub(" ", text)
        text = _TAG_PAIR.sub(" ", text)
        text = _TAG_ANY.sub(" ", text)
    return OMISSION.sub("\n\n", text) if "omitted" in text else text


def _token_index(starts: list[int], position: int) -> int:
    """Index of the token at or before character ``position`` (0 before the first token)."""
    return max(bisect.bisect_right(starts, position) - 1, 0)


@lru_cache(maxsize=65536)
def _number_atom(token: str) -> str:
    return _canonical_number(token)


@lru_cache(maxsize=65536)
def _word_atoms(token: str) -> tuple[str, tuple[Atom, ...], bool, bool]:
    """(lower-case word, its atoms, a negation word, a contrast word) of one non-numeric token."""
    word = token.lower()
    atoms: list[Atom] = []
    if token.isupper() and len(token) <= 6:
        atoms.append(("g", _dihedral(token)))
    if len(token) == 1 and token.islower() and token != "a":
        atoms.append(("x", token))
    concept = _word_concept(word)
    if concept is not None:
        atoms.append(("c", concept))
        if concept == "perpendicular":
            atoms.append(("c", "right"))
    return word, tuple(atoms), word in _NEGATION_WORDS, word in _CONTRAST_WORDS


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
    numbers: set[int] = set()
    contracted = "'" in text or "\u2019" in text  # n't: only then is the text after a word read
    for index, match in enumerate(matches):
        token = match.group()
        if token[0].isdigit():
            numbers.add(index)
            number = _number_atom(token)
            add(("n", number), index)
            if number == "90" and "degree" in lower[match.end() : match.end() + 12]:
                add(("c", "right"), index)
            continue
        word, atoms, negation, contrast = _word_atoms(token)
        words.add(word)
        for atom in atoms:
            occurrences.setdefault(atom, []).append(index)
        if negation or (contracted and lower[match.end() : match.end() + 2] in ("'t", "\u2019t")):
            negations.append(index)
        if contrast:
            pauses.add(index)
    # A comma, colon or semicolon between a word and the next token pauses after that word.
    last = len(matches) - 1
    for mark in _PAUSE_MARK.finditer(text):
        index = bisect.bisect_right(starts, mark.start()) - 1
        if 0 <= index < last and index not in numbers:
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


def _response_sentences(response: str, max_chars: int) -> list[str]:
    """The normalised sentences of the sanitised response, injected tags removed."""
    text = _normalize(_strip_injected(sanitize_response(response, max_chars)))
    return [part for part in _SENTENCE_END.split(text) if part.strip()]


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


_PLAIN_TOKENS: set[str] = set()
"""Words seen to carry no atom (most of a response's prose), skipped by :func:`_sentence_atoms`."""
_PLAIN_LIMIT = 1 << 16


def _sentence_atoms(text: str) -> frozenset[Atom]:
    """A superset of the atoms :func:`_clause` finds in ``text``, without positions (a cheap filter:
    a sentence lacking one of a fact's atoms here cannot state it, so it is never parsed in full)."""
    atoms: set[Atom] = set()
    for token in set(_TOKEN.findall(text)).difference(_PLAIN_TOKENS):
        if token[0].isdigit():
            atoms.add(("n", _number_atom(token)))
            continue
        found = _word_atoms(token)[1]
        if found:
            atoms.update(found)
        elif len(_PLAIN_TOKENS) < _PLAIN_LIMIT:
            _PLAIN_TOKENS.add(token)
    lower = text.lower()
    if ("n", "90") in atoms and "degree" in lower:
        atoms.add(("c", "right"))
    for trigger, concept, pattern in _PHRASES:
        if trigger in lower and pattern.search(lower):
            atoms.add(("c", concept))
    if ("c", "right") in atoms:
        atoms.add(("n", "90"))
    for _, name in _angle_names(text):
        atoms.add(("a", _angle_key(name)))
        if len(name) == 3:
            atoms.add(("v", name[1]))
        elif len(name) == 1:
            atoms.add(("v", name))
    return frozenset(atoms)


class _Response:
    """A response's sentences, and for each key atom the sentences that may hold it (bit ``i``:
    sentence ``i``); a sentence is parsed into a :class:`_Clause` only when a fact needs it."""

    def __init__(self, sentences: list[str]) -> None:
        self.sentences = sentences
        self.masks: dict[Atom, int] = {}
        for index, sentence in enumerate(sentences):
            bit = 1 << index
            for atom in _sentence_atoms(sentence):
                self.masks[atom] = self.masks.get(atom, 0) | bit
        self._parsed: dict[int, _Clause] = {}

    def clause(self, index: int) -> _Clause:
        """Sentence ``index`` parsed (once)."""
        parsed = self._parsed.get(index)
        if parsed is None:
            parsed = self._parsed[index] = _clause(self.sentences[index])
        return parsed


def _response(response: str, max_chars: int) -> _Response:
    return _Response(_response_sentences(response, max_chars))


def _stated(keys: _Keys, response: _Response) -> bool:
    """One sentence states the fact (:func:`_stated_in`); tried: sentences that may hold every key atom."""
    count = len(response.sentences)
    if keys.empty:
        return any(_stated_in(keys, response.clause(i)) for i in range(count))
    candidates = (1 << count) - 1
    for options in _atom_options(keys):
        having = 0
        for atom in options:
            having |= response.masks.get(atom, 0)
        candidates &= having
        if not candidates:
            return False
    return any(_stated_in(keys, response.clause(i)) for i in range(count) if candidates >> i & 1)
