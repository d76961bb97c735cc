"""What a chat server sends back: the reply, its token usage, and the bounded reads of a response."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from perception_verl.client import failures
from perception_verl.client.errors import ChatError
from perception_verl.client.redact import mask_secret, masked_snippet, safe_url


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply; ``cached_tokens`` is None where the server does not report them
    (vLLM: ``--enable-prompt-tokens-details``; SGLang: ``--enable-cache-report``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None


@dataclass(frozen=True)
class ChatReply:
    """The assistant text of one successful chat call; ``requests`` counts HTTP attempts it took."""

    text: str
    latency_s: float
    requests: int
    finish_reason: str | None = None
    url: str = ""
    usage: Usage | None = None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return int(value)


def parse_usage(payload: Any) -> Usage | None:
    """The ``usage`` of a chat.completion body (``prompt_tokens_details.cached_tokens`` where given)."""
    usage = payload.get("usage") if isinstance(payload, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    return Usage(_count(usage.get("prompt_tokens")) or 0, _count(usage.get("completion_tokens")) or 0, cached)


def parse_chat_completion(raw: bytes) -> tuple[str, str | None]:
    """(content, finish_reason) of an OpenAI ``chat.completion`` body; ValueError if it has none."""
    content, finish, _ = parse_chat_reply(raw)
    return content, finish


def parse_chat_reply(raw: bytes) -> tuple[str, str | None, Usage | None]:
    """(content, finish_reason, usage) of an OpenAI ``chat.completion`` body; ValueError if no content."""
    try:
        payload = json.loads(raw)
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise ValueError(f"not a chat.completion body ({type(err).__name__}: {err})") from None
    if not isinstance(content, str):
        raise ValueError(f"choices[0].message.content is {type(content).__name__}, not text")
    finish = choice.get("finish_reason")
    return content, finish if isinstance(finish, str) else None, parse_usage(payload)


def still_loading(problem: str | None) -> bool:
    """A health fault of a server that is starting: nothing listening yet, or ``/health`` not yet 200."""
    return problem is not None and problem.startswith(
        ("connection refused", "GET /health returned HTTP 5", "GET /v1/models returned HTTP 5")
    )


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body of ``resp`` (decompressed), or None once it passes ``limit`` bytes (not read further)."""
    length = resp.content_length
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def redirect_note(resp: aiohttp.ClientResponse) -> str:
    if not 300 <= resp.status < 400:
        return ""
    location = resp.headers.get("Location")
    return f" (a redirect to {safe_url(location) if location else 'nowhere'}, not followed)"


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_CONTEXT_LENGTH = re.compile(r"context length|context window|maximum context|max_model_len|too long", re.I)


def reply_of(
    status: int,
    raw: bytes | None,
    where_to: str,
    limit: int,
    api_key: str | None,
    location: str | None,
    retry_after: str | None,
) -> tuple[str, str | None, Usage | None]:
    """(text, finish_reason, usage) of an answer to a chat request at ``where_to`` (the URL as shown).

    :class:`ChatError` of the failure kind otherwise: ``redirect`` (never followed), ``oversize`` (more
    than ``limit`` bytes), ``context_length`` (a 400 about the context), ``http_<status>`` (with the
    server's ``Retry-After``), ``bad_json``. The key is masked out of everything the server sent.
    """
    if 300 <= status < 400:
        where = mask_secret(safe_url(location), api_key) if location else "nowhere (no Location)"
        raise ChatError(
            failures.REDIRECT,
            f"{where_to} answered HTTP {status} redirecting to {where}; redirects are not "
            "followed (the prompt would go to another host): point the judge URL at the server itself",
        )
    if raw is None and status == 200:
        raise ChatError(
            failures.OVERSIZE,
            f"{where_to} sent a reply larger than {limit} bytes (max_reply_bytes; default sized "
            "from max_new_tokens); not read further",
        )
    if status != 200:
        text = (raw or b"").decode("utf-8", "replace")
        snippet = masked_snippet(text, api_key, 200)
        kind = f"http_{status}"
        if status == 400 and _CONTEXT_LENGTH.search(text):
            kind = failures.CONTEXT_LENGTH
        raise ChatError(
            kind,
            f"{where_to} answered HTTP {status}: {snippet}",
            retry_after_s=parse_retry_after(retry_after),
        )
    assert raw is not None
    try:
        text, finish, usage = parse_chat_reply(raw)
    except ValueError as err:
        raise ChatError("bad_json", f"{where_to}: {mask_secret(str(err), api_key)}") from None
    return mask_secret(text, api_key), finish, usage
