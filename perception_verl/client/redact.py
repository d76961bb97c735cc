"""Masking a secret (the API key) out of text that came from a server, before it is cut or shown.

A server may echo the ``Authorization`` header whole, cut short, or split over an error body. Masking
only the whole key misses a partial echo, and cutting text before masking leaves the head of a key
that straddles the cut. :func:`mask_secret` therefore replaces every stretch of ``text`` covered by a
run of at least :data:`MIN_RUN` consecutive characters of the secret (the whole secret when it is
shorter), and callers cut the text only afterwards (:func:`masked_snippet`).

URLs: :func:`safe_url` is the one way a URL is shown to humans (userinfo masked); the client refuses
a judge URL that carries userinfo at all (:func:`userinfo_error`), so a key never rides in a URL.
"""

from __future__ import annotations

import re

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


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>[^/?#@]*)@")


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries ``user:password@`` (or ``user@``) before its host."""
    return bool(_USERINFO.match(url.strip()))


def safe_url(url: str) -> str:
    """``url`` as every log line, error, label and dump shows it: userinfo replaced by ``***@``.

    The one way a URL is rendered for humans: ``http://user:KEY@host:8000/v1`` -> ``http://***@host:8000/v1``.
    """
    return _USERINFO.sub(lambda m: f"{m.group('scheme') or ''}{MASK}@", url.strip(), count=1)


def userinfo_error(url: str, api_key_env: str | None = None) -> str:
    """The message refusing a judge URL with credentials in it (the URL shown masked)."""
    both = (
        f"; the key would also come from the environment variable named by api_key_env "
        f"({api_key_env}): two sources of one key, keep only the environment variable"
        if api_key_env
        else ""
    )
    return (
        f"judge URL {safe_url(url)} carries credentials (user:password@ before the host){both}. "
        "URLs are logged and name the judge in every sample's reward_extra_info, so they must not hold "
        "a key: drop 'user:password@' from the URL (reward.reward_kwargs.judge_urls or --judge-url) and "
        "put the key in an environment variable named by reward.reward_kwargs.api_key_env or "
        "--api-key-env (sent as 'Authorization: Bearer')"
    )
