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
  of such a tag become ``‹`` and ``›``, so the judge still reads the text but it is no longer markup;
- caps the length, keeping the head and the tail around an explicit
  ``[... N characters omitted ...]`` marker.

Neutralising replaces characters one for one, and the capped text fits ``max_chars``, so the
function is idempotent: ``sanitize_response(sanitize_response(t)) == sanitize_response(t)``.

Not handled: look-alike letters from other scripts (Cyrillic ``і`` in ``іnfo1``) and tags spelled
with HTML entities. Such text can at most distract the judge; it is never read as a verdict,
because :func:`~perception_verl.judge.verdict.parse_verdicts` parses only the judge's own answer.
"""

from __future__ import annotations

import re
import unicodedata

NEUTRAL_OPEN = "\u2039"  # ‹
NEUTRAL_CLOSE = "\u203a"  # ›
MIN_MAX_CHARS = 64

_OPENERS = "<\uff1c\ufe64\u2329\u3008\u27e8\u2039"  # < ＜ ﹤ 〈 〈 ⟨ ‹
_CLOSERS = ">\uff1e\ufe65\u232a\u3009\u27e9\u203a"  # > ＞ ﹥ 〉 〉 ⟩ ›

# A tag whose name starts like one of ours: info (verdict tags), response / facts (prompt delimiters).
TAG_LIKE = re.compile(
    rf"[{_OPENERS}](\s*/?\s*(?:info|response|facts?)[^{_OPENERS}{_CLOSERS}\n]{{0,24}})([{_CLOSERS}]?)",
    re.IGNORECASE,
)
# Chat-template special-token syntax: <|im_start|>, <|im_end|>, <｜begin▁of▁sentence｜>, ...
SPECIAL_TOKEN_LIKE = re.compile(rf"[{_OPENERS}](\s*[|\uff5c][\w\u2581.\-]{{1,40}}[|\uff5c]\s*)[{_CLOSERS}]")

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


def _neutral_tag(match: re.Match[str]) -> str:
    return NEUTRAL_OPEN + match.group(1) + (NEUTRAL_CLOSE if match.group(2) else "")


def neutralize_markup(text: str) -> str:
    """Replace the brackets of verdict tags, prompt delimiters and special tokens (length-preserving)."""
    lower = text.lower()
    if "info" in lower or "response" in lower or "fact" in lower:
        text = TAG_LIKE.sub(_neutral_tag, text)
    if "|" in text or "\uff5c" in text:
        text = SPECIAL_TOKEN_LIKE.sub(NEUTRAL_OPEN + r"\1" + NEUTRAL_CLOSE, text)
    return text


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
