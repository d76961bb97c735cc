"""Masking a secret (the API key) out of text that came from a server, before it is cut or shown.

A server may echo the ``Authorization`` header whole, cut short, or split over an error body. Masking
only the whole key misses a partial echo, and cutting text before masking leaves the head of a key
that straddles the cut. :func:`mask_secret` therefore replaces every stretch of ``text`` covered by a
run of at least :data:`MIN_RUN` consecutive characters of the secret (the whole secret when it is
shorter), and callers cut the text only afterwards (:func:`masked_snippet`).
"""

from __future__ import annotations

MIN_RUN = 8
"""Shortest run of the secret's characters that is masked (shorter runs are too common to hide)."""

MASK = "***"


def mask_secret(text: str, secret: str | None, *, min_run: int = MIN_RUN) -> str:
    """``text`` with each stretch covered by ``min_run``-character runs of ``secret`` replaced by ``***``."""
    if not secret or not text:
        return text
    size = min(min_run, len(secret))
    covered = bytearray(len(text))
    hit = False
    for piece in {secret[i : i + size] for i in range(len(secret) - size + 1)}:
        start = text.find(piece)
        while start >= 0:
            covered[start : start + size] = b"\x01" * size
            hit = True
            start = text.find(piece, start + 1)
    if not hit:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        if covered[index]:
            while index < len(text) and covered[index]:
                index += 1
            out.append(MASK)
        else:
            end = covered.find(b"\x01", index)
            end = len(text) if end < 0 else end
            out.append(text[index:end])
            index = end
    return "".join(out)


def masked_snippet(text: str, secret: str | None, limit: int) -> str:
    """The first ``limit`` characters of ``text`` after masking ``secret`` (mask first, then cut)."""
    return mask_secret(text, secret)[:limit]
