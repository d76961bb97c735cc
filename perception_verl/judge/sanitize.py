"""Make an untrusted policy response safe to place inside the judge prompt.

The policy is trained against the judge, so its text is adversarial input. Before it reaches the
judge, :func:`sanitize_response`:

- replaces lone UTF-16 surrogates with U+FFFD (they cannot be JSON-encoded for the HTTP request);
- maps full-width forms of ASCII characters (``＜ｉｎｆｏ１＞``) to ASCII;
- turns ``\\r\\n`` and lone ``\\r`` into ``\\n`` and removes every other control or format
  character except ``\\n`` and ``\\t`` (this includes zero-width and bidi characters that could
  hide a tag from a reader while the judge's tokenizer still sees it);
- neutralises anything that looks like a verdict tag (``<info3>``, ``</INFO3 >``, ``< info 1 >``,
  full-width ``＜info1＞``), the prompt's own response delimiters (``<response>``, ``</response>``),
  a ``<facts>`` tag and chat-template special-token syntax (``<|im_end|>``): the bracket characters
  of such a tag become ``‹`` and ``›``, so the judge still reads the text but it is no longer markup.
  Whether a span is a tag is decided on its *skeleton*: Unicode compatibility form (NFKC), case
  folding, accents and other combining marks and blank letters dropped, look-alike letters
  (dotless ``ı``, dotted ``İ``, Cyrillic ``і о р е ѕ``, Greek ``ι ο ρ ν``, Latin small capitals) and
  other scripts' digits mapped to ASCII, look-alike brackets (``‹ 〈 ⟨ ˂ ❮ «``) read as ``<``/``>``;
  letters may be spaced out (``< i n f o 1 >``);
- caps the length, keeping the head and the tail around an explicit
  ``[... N characters omitted ...]`` marker.

Neutralising replaces characters one for one, and the capped text fits ``max_chars``, so the
function is idempotent: ``sanitize_response(sanitize_response(t)) == sanitize_response(t)``.

Not handled: tags spelled with HTML entities (``&lt;info1&gt;``), look-alikes outside the fixed
tables above, and letters imitated by digits (``inf0``). Such text can at most distract the judge;
it is never read as a verdict: :func:`~perception_verl.judge.verdict.parse_verdicts` parses only the
judge's own answer and accepts only the exact ASCII form ``<infoK>0</infoK>`` / ``<infoK>1</infoK>``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

NEUTRAL_OPEN = "\u2039"  # ‹
NEUTRAL_CLOSE = "\u203a"  # ›
MIN_MAX_CHARS = 64

# Characters a reader may take for "<" or ">" (NFKC maps the full-width and small forms there too).
_OPENERS = "<\uff1c\ufe64\u2329\u3008\u27e8\u2039\u02c2\u1438\u276e\u276c\u29fc\u227a\u00ab\u300a\u27ea\u2264"
_CLOSERS = ">\uff1e\ufe65\u232a\u3009\u27e9\u203a\u02c3\u1433\u276f\u276d\u29fd\u227b\u00bb\u300b\u27eb\u2265"
_OPENER = re.compile(f"[{_OPENERS}]")
_ASCII_SKELETON = str.maketrans({chr(c): chr(c).lower() for c in range(128)})
SKELETON_WINDOW = 72
"""Visible characters after an opener that are read to decide whether it starts a tag."""

# Look-alike letters from other scripts and Latin small capitals -> the ASCII letter they imitate
# (after case folding, so capitals are covered by their lower-case forms).
_CONFUSABLE_GROUPS = {
    "a": "\u0430\u03b1\u0251\u1d00",
    "c": "\u0441\u03f2\u1d04\u217d",
    "e": "\u0435\u03b5\u04bd\u1d07\u025b",
    "f": "\u0192\u03dd\ua730",
    "i": "\u0131\u0456\u03b9\u026a\u04cf\u0269\ua647\u13a5\u0457",
    "n": "\u0578\u0274\u03bd\u057c",
    "o": "\u043e\u03bf\u1d0f\u0585\u03c3\u0ced",
    "p": "\u0440\u03c1\u1d18\u2ca3",
    "r": "\u0433\u0280\u1d26",
    "s": "\u0455\ua731\u0282",
    "t": "\u0442\u03c4\u1d1b",
}
_CONFUSABLES = {char: ascii_letter for ascii_letter, chars in _CONFUSABLE_GROUPS.items() for char in chars}
# Blank-looking letters that are not format characters (so survive :func:`clean_characters`).
_BLANK_LETTERS = frozenset("\u3164\u115f\u1160\uffa0\u2800\u034f")

# In the skeleton: a verdict tag (letters may be spaced: "i n f o"), a prompt delimiter, a special token.
_SPACED = r"[\s._\-]*"
_TAG_NAMES = "|".join(_SPACED.join(word) for word in ("info", "response", "facts", "fact"))
_TAG_SKELETON = re.compile(rf"<(\s*/?\s*(?:{_TAG_NAMES})[^<>\n]{{0,24}})(>?)")
_SPECIAL_SKELETON = re.compile(r"<(\s*\|[\w\u2581.\-]{1,40}\|\s*)(>)")

OMISSION = re.compile(r"\n\[\.\.\. (\d+) characters omitted \.\.\.\]\n")

_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e\n\t]")
_FULLWIDTH_ASCII = re.compile("[\uff01-\uff5e]")  # ！ .. ～, the full-width forms of ASCII ! .. ~


def _omission_marker(count: int) -> str:
    return f"\n[... {count} characters omitted ...]\n"


def _to_ascii(match: re.Match[str]) -> str:
    return chr(ord(match.group()) - 0xFEE0)


def clean_characters(text: str) -> str:
    """Replace lone surrogates, map full-width ASCII forms (``ｉｎｆｏ``) to ASCII, normalise line ends,
    and drop control/format characters except ``\\n`` and ``\\t`` (length never grows)."""
    if not text.isascii():
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        text = _FULLWIDTH_ASCII.sub(_to_ascii, text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and not _ASCII_CONTROL.search(text):
        return text
    suspects = set(_NOT_PLAIN_ASCII.findall(text))
    drop = {ord(ch): None for ch in suspects if unicodedata.category(ch) in ("Cc", "Cf")}
    return text.translate(drop) if drop else text


@lru_cache(maxsize=8192)
def char_skeleton(char: str) -> str:
    """What ``char`` reads as: NFKC compatibility form, case-folded, accents and invisible marks dropped,
    look-alike letters of other scripts mapped to ASCII, other scripts' digits to ASCII digits, and
    anything that looks like an angle bracket mapped to ``<`` or ``>``."""
    if char in _OPENERS:
        return "<"
    if char in _CLOSERS:
        return ">"
    if char.isascii():
        return char.lower()
    out = []
    for part in unicodedata.normalize("NFKD", char).casefold():
        if part in _BLANK_LETTERS or unicodedata.category(part) in ("Mn", "Me", "Cf"):
            continue
        part = _CONFUSABLES.get(part, part)
        if not part.isascii() and part.isdecimal():
            part = str(unicodedata.decimal(part))
        if part in _OPENERS:
            part = "<"
        elif part in _CLOSERS:
            part = ">"
        out.append(part)
    return unicodedata.normalize("NFKC", "".join(out))


def _skeleton_after(text: str, start: int) -> tuple[str, list[int]]:
    """The skeleton of ``text`` from ``start`` (:data:`SKELETON_WINDOW` characters of it, invisible ones
    not counted) and, per skeleton character, its offset from ``start`` in ``text``."""
    chunk = text[start : start + SKELETON_WINDOW]
    if chunk.isascii():
        return chunk.translate(_ASCII_SKELETON), list(range(len(chunk)))
    pieces: list[str] = []
    origin: list[int] = []
    index = start
    while index < len(text) and len(origin) < SKELETON_WINDOW:
        piece = char_skeleton(text[index])
        pieces.append(piece)
        origin.extend([index - start] * len(piece))
        index += 1
    return "".join(pieces), origin


def markup_brackets(text: str) -> list[tuple[int, str]]:
    """(index, neutral bracket) for each bracket of a tag-like span in ``text``, judged on its skeleton."""
    found: list[tuple[int, str]] = []
    for match in _OPENER.finditer(text):
        start = match.start()
        skeleton, origin = _skeleton_after(text, start)
        tag = _TAG_SKELETON.match(skeleton) or _SPECIAL_SKELETON.match(skeleton)
        if tag is None:
            continue
        found.append((start, NEUTRAL_OPEN))
        if tag.group(2):
            found.append((start + origin[tag.end(2) - 1], NEUTRAL_CLOSE))
    return found


def neutralize_markup(text: str) -> str:
    """Replace the brackets of verdict tags, prompt delimiters and special tokens (length-preserving).

    A span counts as a tag when its skeleton (:func:`char_skeleton`: NFKC, case folding, confusable
    letters, invisible marks dropped) reads as one, so ``<ınfo1>``, ``<İNFO1>``, ``<іnfо1>``
    (Cyrillic), ``<ΙΝFΟ1>`` (Greek), ``<ｉｎｆｏ１>`` and ``<in\u0301fo1>`` are all neutralised.
    """
    brackets = markup_brackets(text)
    if not brackets:
        return text
    chars = list(text)
    for index, bracket in brackets:
        chars[index] = bracket
    return "".join(chars)


def cap_length(text: str, max_chars: int) -> str:
    """Keep ``text`` whole if it fits ``max_chars``, else its head and tail around an omission marker."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    if len(text) <= max_chars:
        return text
    marker_len = len(_omission_marker(len(text)))
    keep = max_chars - marker_len
    omitted = len(text) - keep
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + _omission_marker(omitted) + (text[len(text) - tail :] if tail else "")


def sanitize_response(text: str, max_chars: int = 6000) -> str:
    """Return ``text`` safe to embed in the judge prompt (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"response must be str, got {type(text).__name__}")
    return cap_length(neutralize_markup(clean_characters(text)), max_chars)
