"""An async client for OpenAI-compatible chat servers (SGLang, vLLM, or SGLang's router).

One :class:`ChatClient` holds one aiohttp session with a keep-alive connector, opened lazily on the
event loop that first uses it. Requests are bounded by a semaphore (``max_concurrency``) and each has
its own timeout. Requests are spread over the configured replicas (see
:mod:`perception_verl.client.replicas`).

Retries: one owner. In training the deadline-aware judge
(:class:`~perception_verl.judge.budget.BudgetedJudge`) owns every retry: its client is built with
``max_retries=0`` and makes single attempts, each cut off when the step deadline's time is up.
``max_retries`` retries inside :meth:`ChatClient.chat` only where
no budget owner exists (the offline CLIs). Either way :func:`perception_verl.client.failures.retryable`
decides which failure kinds are retried and :func:`perception_verl.client.backoff.backoff_delay` how
long to wait (a ``Retry-After`` hint honoured up to ``backoff_max_s``).

Hostile servers: no redirect is followed (a 3xx is the failure kind ``redirect``, naming its
``Location``); a reply is read up to ``max_reply_bytes`` (default sized from the call's
``max_tokens``) and a larger one is the failure kind ``oversize``; a 400 saying the context is too
short is the kind ``context_length``. A judge URL with ``user:password@`` in it is refused
(:func:`~perception_verl.client.redact.userinfo_error`); every URL in a message goes through
:func:`~perception_verl.client.redact.safe_url`.

Event loops: aiohttp sessions and asyncio semaphores belong to the loop they were made on. When the
client is used from a different running loop than before (a worker calling ``asyncio.run`` per
batch, or a second Ray reward worker loop in the same process), it opens a fresh session on that loop
and closes the old one where it still can. The concurrency cap holds per event loop; use one
client per loop for a process-wide cap.

The API key is read from the environment variable named by ``api_key_env`` and sent as
``Authorization: Bearer``; it is never logged, and any run of 8 or more of its characters is masked
out of everything the server sends back (error bodies, before they are cut; replies; model lists).

Dialects: the health check also reads which server answers (``owned_by`` in ``/v1/models``: SGLang or
vLLM; see :mod:`perception_verl.client.dialects`) and resolves ``server`` (``auto``, ``sglang``, ``vllm``)
to :attr:`ChatClient.dialect`; ``chat(..., regex=...)`` then sends the constraint in that server's own
field. Every reply's ``usage`` (prompt, cached prompt and completion tokens) is read into
:class:`ChatReply` and summed in :meth:`ChatClient.metrics`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from perception_verl.client import failures
from perception_verl.client.backoff import backoff_delay
from perception_verl.client.dialects import (
    DialectError,
    check_setting,
    dialect_of_models,
    regex_fields,
    resolve_dialect,
)
from perception_verl.client.errors import ChatError, JudgeUnavailable
from perception_verl.client.redact import has_userinfo, mask_secret, masked_snippet, safe_url, userinfo_error
from perception_verl.client.replicas import Replica, ReplicaPool, with_scheme

logger = logging.getLogger(__name__)

_CHAT_PATH = "/v1/chat/completions"
_MIN_PROBE_S = 1.0
"""The least time a start-up probe is given, even at the deadline: a probe clipped to the last
milliseconds would report a timeout instead of the fault (``connection refused``) it would have seen."""

REPLY_BYTES_PER_TOKEN = 64
"""Reply bytes allowed per requested token: a token is at most a few characters, each at most 6 bytes
as a JSON ``\\uXXXX`` escape, so an honest reply stays far below this."""
REPLY_ENVELOPE_BYTES = 64 * 1024
"""Bytes allowed on top for the JSON envelope (ids, usage, logprobs set to null, ...)."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error answer's body is read (only its first 200 characters are shown)."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTEXT_LENGTH = re.compile(r"context length|context window|maximum context|max_model_len|too long", re.I)


def reply_bound(max_tokens: int, max_reply_bytes: int | None = None) -> int:
    """Bytes of a chat reply the client reads: ``max_reply_bytes``, else sized from ``max_tokens``."""
    if max_reply_bytes:
        return max_reply_bytes
    return REPLY_ENVELOPE_BYTES + REPLY_BYTES_PER_TOKEN * max(int(max_tokens), 1)


def normalize_url(url: str, *, api_key_env: str | None = None) -> str:
    """``host:port``, ``http://host:port/`` or ``http://host:port/v1`` -> ``http://host:port``.

    ValueError for an empty URL, and for one with ``user:password@`` in it (the message shows it masked
    and names the options that carry a key instead, and both sources when ``api_key_env`` is set too).
    """
    text = url.strip()
    if not text:
        raise ValueError("judge URL is empty")
    if has_userinfo(text):
        raise ValueError(userinfo_error(text, api_key_env))
    text = with_scheme(text).rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


@dataclass(frozen=True)
class ChatClientConfig:
    """Where the chat server is and how hard to try. ``urls`` are replicas of one model.

    ``api_key_env`` names the environment variable holding the API key (the key itself is never an
    option). ``max_retries`` is for callers with no retry owner (the offline CLIs); the training judge
    sets it to 0 and retries by failure kind within the step deadline. ``max_reply_bytes`` bounds how
    much of a reply is read (``None``: sized from each call's ``max_tokens``, see :func:`reply_bound`).
    """

    urls: tuple[str, ...]
    model: str
    api_key_env: str | None = None
    max_concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    health_timeout_s: float = 30.0
    health_poll_s: float = 2.0
    replica_cooldown_s: float = 5.0
    server: str = "auto"
    max_reply_bytes: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "server", check_setting(self.server))
        except ValueError as err:
            raise ValueError(f"ChatClientConfig.server: {err}") from None
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        if not urls:
            raise ValueError("ChatClientConfig.urls: at least one judge URL is required")
        if self.api_key_env and not _ENV_NAME.fullmatch(self.api_key_env):
            raise ValueError(
                "ChatClientConfig.api_key_env (api_key_env / --api-key-env) takes the NAME of an environment "
                "variable holding the key, and this value is not one (not shown: it may be the key itself); "
                "export the key, e.g. JUDGE_API_KEY=..., and pass --api-key-env JUDGE_API_KEY"
            )
        object.__setattr__(
            self, "urls", tuple(normalize_url(u, api_key_env=self.api_key_env) for u in urls)
        )
        if not self.model:
            raise ValueError("ChatClientConfig.model: the served model name is required")
        positive = {
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "health_timeout_s": self.health_timeout_s,
            "health_poll_s": self.health_poll_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"ChatClientConfig.{name} must be > 0, got {value!r}")
        non_negative = {
            "max_retries": self.max_retries,
            "backoff_base_s": self.backoff_base_s,
            "backoff_max_s": self.backoff_max_s,
            "replica_cooldown_s": self.replica_cooldown_s,
            "max_reply_bytes": self.max_reply_bytes or 0,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"ChatClientConfig.{name} must be >= 0, got {value!r}")


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


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    session: aiohttp.ClientSession
    semaphore: asyncio.Semaphore


@dataclass
class _Stats:
    counters: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0


class ChatClient:
    """Async OpenAI-compatible chat client with health check, retries, replicas and a concurrency cap."""

    def __init__(self, config: ChatClientConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._pool = ReplicaPool(config.urls, cooldown_s=config.replica_cooldown_s)
        self._rng = rng if rng is not None else random.Random()
        self._state: _LoopState | None = None
        self._api_key: str | None = None
        self._stats = _Stats()
        self._found: dict[str, tuple[str | None, str | None]] = {}
        self.dialect: str | None = None if config.server == "auto" else config.server

    def __repr__(self) -> str:
        return f"ChatClient(urls={[safe_url(u) for u in self.config.urls]!r}, model={self.config.model!r})"

    async def __aenter__(self) -> ChatClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ session per event loop

    def _read_api_key(self) -> str | None:
        name = self.config.api_key_env
        if not name:
            return None
        value = os.environ.get(name, "")
        if not value:
            raise ValueError(
                f"ChatClientConfig.api_key_env: environment variable {name!r} is not set or empty"
            )
        return value

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is not None and state.loop is loop and not state.session.closed:
            return state
        if state is not None:
            self._abandon(state)
        self._api_key = self._read_api_key()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, limit_per_host=0)
        session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
        )
        self._state = _LoopState(loop, session, asyncio.Semaphore(self.config.max_concurrency))
        return self._state

    @staticmethod
    def _abandon(state: _LoopState) -> None:
        """Let go of a session made on another loop: close it there if that loop still runs."""
        if state.session.closed:
            return
        if state.loop.is_running() and not state.loop.is_closed():
            asyncio.run_coroutine_threadsafe(state.session.close(), state.loop)
        else:
            logger.debug("chat client moved to a new event loop; dropping the session of the old one")
            state.session.detach()

    async def close(self) -> None:
        """Close the HTTP session (a later call opens a new one)."""
        state, self._state = self._state, None
        if state is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if state.loop is running:
            await state.session.close()
        else:
            self._abandon(state)

    # ------------------------------------------------------------------ health check

    async def start(self) -> None:
        """Check every URL: ``/health`` answers 200 and ``/v1/models`` lists ``config.model``.

        A server still loading (port not open yet, or ``/health`` answering 5xx) is waited for,
        re-probed every ``health_poll_s`` with a progress line, for at most ``health_timeout_s`` in
        all (the probe at the deadline still gets ``_MIN_PROBE_S``, so it reports the real fault).
        Unusable replicas are logged and skipped for a cool-down; :class:`JudgeUnavailable` (first
        line: each URL and its fault) if none is usable by then.
        """
        state = self._loop_state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.health_timeout_s
        floor = min(_MIN_PROBE_S, self.config.health_timeout_s)
        for attempt in itertools.count():
            remaining = max(deadline - loop.time(), floor)
            problems = await asyncio.gather(
                *(self._check(state, r.url, remaining) for r in self._pool.replicas)
            )
            usable = any(p is None for p in problems)
            if usable or not all(_still_loading(p) for p in problems) or loop.time() >= deadline:
                break
            self._stats.counters["health_retries"] += 1
            waited = self.config.health_timeout_s - (deadline - loop.time())
            if attempt % 5 == 0:
                logger.warning(
                    "waiting for the judge at %s to come up (%s); %.0f s of %g s (health_timeout_s)",
                    ", ".join(safe_url(r.url) for r in self._pool.replicas), problems[0], waited,
                    self.config.health_timeout_s,
                )
            await asyncio.sleep(min(self.config.health_poll_s, max(deadline - loop.time(), 0.0)))
        for replica, problem in zip(self._pool.replicas, problems, strict=True):
            if problem is None:
                self._pool.mark_ok(replica)
            else:
                self._pool.mark_down(replica)
                logger.warning("judge server %s is not usable: %s", safe_url(replica.url), problem)
        if not usable:
            detail = "; ".join(
                f"{safe_url(r.url)}: {p}" for r, p in zip(self._pool.replicas, problems, strict=True)
            )
            await self.close()
            raise JudgeUnavailable(
                f"no usable judge server for model {self.config.model!r}: {detail} "
                f"(waited up to {self.config.health_timeout_s:g} s, health_timeout_s)"
            )
        healthy = self._pool.healthy_urls()
        self._settle_dialect(healthy)
        logger.info("judge model %r ready at %s", self.config.model, ", ".join(safe_url(u) for u in healthy))

    def _settle_dialect(self, urls: Sequence[str]) -> None:
        detected = {}
        for url in urls:
            dialect, owner = self._found.get(url, (None, None))
            detected[url] = dialect
            found = dialect or "unknown server"
            logger.info("judge server at %s reports owned_by=%r: %s", safe_url(url), owner, found)
        try:
            self.dialect = resolve_dialect(self.config.server, detected)
        except DialectError:
            self._stats.counters["dialect_errors"] += 1
            raise
        logger.info("judge server dialect: %s (setting %s)", self.dialect or "unknown", self.config.server)

    async def _check(self, state: _LoopState, url: str, limit: float) -> str | None:
        try:
            return await asyncio.wait_for(self._probe(state, url), timeout=limit)
        except asyncio.TimeoutError:
            return f"no answer to the health check within {limit:.3g} s (timeout)"

    async def _probe(self, state: _LoopState, url: str) -> str | None:
        try:
            async with state.session.get(f"{url}/health", allow_redirects=False) as resp:
                if resp.status != 200:
                    return f"GET /health returned HTTP {resp.status}{_redirect_note(resp)}"
            async with state.session.get(f"{url}/v1/models", allow_redirects=False) as resp:
                if resp.status != 200:
                    return f"GET /v1/models returned HTTP {resp.status}{_redirect_note(resp)}"
                raw = await _read_bounded(resp, ERROR_BODY_BYTES * 16)
            if raw is None:
                return f"GET /v1/models answered more than {ERROR_BODY_BYTES * 16} bytes (not read further)"
        except aiohttp.ClientConnectorError as err:
            return f"connection refused or host unreachable ({self._redact(str(err.os_error))})"
        except aiohttp.ClientError as err:
            return f"health request failed ({type(err).__name__}: {self._redact(str(err))})"
        try:
            payload = json.loads(raw)
            served = [str(m["id"]) for m in payload["data"]]
        except (ValueError, KeyError, TypeError):
            return "GET /v1/models did not return an OpenAI model list"
        self._found[url] = dialect_of_models(payload, self.config.model)
        if self.config.model not in served:
            return self._redact(f"model {self.config.model!r} not served; served: {served}")
        return None

    # ------------------------------------------------------------------ chat

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        extra_body: Mapping[str, Any] | None = None,
        regex: str | None = None,
    ) -> ChatReply:
        """One chat completion; a failure of a retryable kind is tried again up to ``max_retries`` times
        (0 under the training judge, which owns retries). Raises :class:`ChatError` naming the last kind.

        ``regex`` constrains the answer, in the field of the server's dialect (:attr:`dialect`);
        :class:`~perception_verl.client.dialects.DialectError` when the dialect is unknown.
        """
        if regex is not None and self.dialect is None:
            raise DialectError(
                "cannot constrain output: the judge server's dialect is unknown "
                f"(server={self.config.server}); run start() first or set the server (sglang or vllm)"
            )
        state = self._loop_state()
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if extra_body:
            body.update(extra_body)
        if regex is not None:
            assert self.dialect is not None
            body.update(regex_fields(self.dialect, regex))
        payload = json.dumps(body)
        limit = reply_bound(max_tokens, self.config.max_reply_bytes)
        started = time.perf_counter()
        counters = self._stats.counters
        last: ChatError | None = None
        for attempt in range(self.config.max_retries + 1):
            if last is not None:
                counters["retries"] += 1
                await asyncio.sleep(self._delay(attempt - 1, last))
            replica = self._pool.pick()
            try:
                text, finish, usage = await self._send(state, replica, payload, limit)
            except ChatError as err:
                err.attempts = attempt + 1
                counters[f"errors.{err.kind}"] += 1
                if err.kind == "connection":
                    self._pool.mark_down(replica)
                last = err
                if not failures.retryable(err.kind):
                    break
                continue
            self._pool.mark_ok(replica)
            counters["ok"] += 1
            counters[f"finish.{finish or 'none'}"] += 1
            if usage is not None:
                counters["usage.prompt_tokens"] += usage.prompt_tokens
                counters["usage.completion_tokens"] += usage.completion_tokens
                if usage.cached_tokens is not None:
                    counters["usage.cached_tokens"] += usage.cached_tokens
                    counters["usage.cached_reported"] += 1
            latency = time.perf_counter() - started
            return ChatReply(text, latency, attempt + 1, finish, replica.url, usage)
        assert last is not None
        counters[f"failures.{last.kind}"] += 1
        raise last

    def _delay(self, retry: int, err: ChatError) -> float:
        cfg = self.config
        return backoff_delay(retry, cfg.backoff_base_s, cfg.backoff_max_s, self._rng, err.retry_after_s)

    async def _send(
        self, state: _LoopState, replica: Replica, payload: str, limit: int
    ) -> tuple[str, str | None, Usage | None]:
        url = replica.url
        shown = safe_url(url)  # every message names the URL the one way URLs are shown
        stats = self._stats
        async with state.semaphore:
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            stats.counters["requests_sent"] += 1
            replica.in_flight += 1
            replica.sent += 1
            try:
                async with state.session.post(
                    f"{url}{_CHAT_PATH}",
                    data=payload,
                    timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    location = resp.headers.get("Location")
                    raw = await _read_bounded(resp, limit if status == 200 else ERROR_BODY_BYTES)
            except asyncio.TimeoutError:
                raise ChatError(
                    "timeout", f"no answer from {shown} within {self.config.timeout_s:g} s"
                ) from None
            except aiohttp.ClientConnectorError as err:
                raise ChatError(
                    "connection", f"cannot connect to {shown} ({self._redact(str(err.os_error))})"
                ) from None
            except aiohttp.ClientError as err:
                raise ChatError(
                    "reset", f"connection to {shown} failed mid-request ({type(err).__name__})"
                ) from None
            finally:
                stats.in_flight -= 1
                replica.in_flight -= 1
        if 300 <= status < 400:
            where = self._redact(safe_url(location)) if location else "nowhere (no Location)"
            raise ChatError(
                failures.REDIRECT,
                f"{shown}{_CHAT_PATH} answered HTTP {status} redirecting to {where}; redirects are not "
                "followed (the prompt would go to another host): point the judge URL at the server itself",
            )
        if raw is None and status == 200:
            raise ChatError(
                failures.OVERSIZE,
                f"{shown}{_CHAT_PATH} sent a reply larger than {limit} bytes (max_reply_bytes; default sized "
                "from max_new_tokens); not read further",
            )
        if status != 200:
            text = (raw or b"").decode("utf-8", "replace")
            snippet = masked_snippet(text, self._api_key, 200)
            kind = f"http_{status}"
            if status == 400 and _CONTEXT_LENGTH.search(text):
                kind = failures.CONTEXT_LENGTH
            raise ChatError(
                kind,
                f"{shown}{_CHAT_PATH} answered HTTP {status}: {snippet}",
                retry_after_s=_parse_retry_after(retry_after),
            )
        assert raw is not None
        try:
            text, finish, usage = parse_chat_reply(raw)
        except ValueError as err:
            raise ChatError("bad_json", f"{shown}{_CHAT_PATH}: {self._redact(str(err))}") from None
        return self._redact(text), finish, usage

    def _redact(self, text: str) -> str:
        return mask_secret(text, self._api_key)

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> dict[str, int]:
        """Counters: requests_sent, retries, ok, errors.<kind> (per attempt), failures.<kind> (per call),
        finish.<reason>, usage.{prompt,completion,cached}_tokens (summed over replies; cached only where
        reported, usage.cached_reported replies), health_retries (start-up probes of a loading server),
        dialect_errors, in_flight and max_in_flight."""
        out = dict(self._stats.counters)
        out.setdefault("requests_sent", 0)
        out.setdefault("retries", 0)
        out["in_flight"] = self._stats.in_flight
        out["max_in_flight"] = self._stats.max_in_flight
        return out

    def healthy_urls(self) -> list[str]:
        """Replicas not cooling down after a failure."""
        return self._pool.healthy_urls()


def _still_loading(problem: str | None) -> bool:
    """A health fault of a server that is starting: nothing listening yet, or ``/health`` not yet 200."""
    return problem is not None and problem.startswith(
        ("connection refused", "GET /health returned HTTP 5", "GET /v1/models returned HTTP 5")
    )


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
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


def _redirect_note(resp: aiohttp.ClientResponse) -> str:
    if not 300 <= resp.status < 400:
        return ""
    location = resp.headers.get("Location")
    return f" (a redirect to {safe_url(location) if location else 'nowhere'}, not followed)"


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
