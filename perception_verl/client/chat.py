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

Event loops: aiohttp sessions and asyncio semaphores belong to the loop they were made on, so a client
is bound to the event loop that first uses it and holds one session there (reopened on that loop only
after :meth:`ChatClient.close`). Used from another loop it raises :class:`ClientLoopError` rather than
swap sessions: build one client per loop (the scorer that owns it is bound to one loop too).

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
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from perception_verl.client import failures
from perception_verl.client.backoff import backoff_delay
from perception_verl.client.chat_config import ERROR_BODY_BYTES, ChatClientConfig, normalize_url, reply_bound
from perception_verl.client.dialects import (
    DialectError,
    regex_fields,
    resolve_dialect,
)
from perception_verl.client.errors import ChatError, ClientLoopError, JudgeUnavailable
from perception_verl.client.loop_binding import LoopBinding
from perception_verl.client.probe import check_url
from perception_verl.client.redact import mask_secret, safe_url
from perception_verl.client.replicas import Replica, ReplicaPool
from perception_verl.client.replies import (
    ChatReply,
    Usage,
    parse_chat_completion,
    parse_chat_reply,
    parse_usage,
    read_bounded,
    reply_of,
    still_loading,
)

logger = logging.getLogger(__name__)

_CHAT_PATH = "/v1/chat/completions"
_MIN_PROBE_S = 1.0
"""The least time a start-up probe is given, even at the deadline: a probe clipped to the last
milliseconds would report a timeout instead of the fault (``connection refused``) it would have seen."""


@dataclass
class _Session:
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
        self._binding = LoopBinding()
        self._state: _Session | None = None
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

    def _bound(self) -> None:
        """Bind the client to the running loop on first use; :class:`ClientLoopError` on any other loop."""
        self._binding.check(
            ClientLoopError,
            f"{self!r} is bound to the event loop that first used it; build one client per event loop",
        )

    def _loop_state(self) -> _Session:
        self._bound()
        state = self._state
        if state is not None and not state.session.closed:
            return state
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
        self._state = _Session(session, asyncio.Semaphore(self.config.max_concurrency))
        return self._state

    async def close(self) -> None:
        """Close the HTTP session (on the client's loop; a later call there opens a new one)."""
        state, self._state = self._state, None
        if state is None:
            return
        self._bound()
        await state.session.close()

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
            probed = await asyncio.gather(
                *(
                    check_url(state.session, r.url, self.config.model, self._redact, remaining)
                    for r in self._pool.replicas
                )
            )
            for replica, (_, found) in zip(self._pool.replicas, probed, strict=True):
                if found is not None:
                    self._found[replica.url] = found
            problems = [problem for problem, _ in probed]
            usable = any(p is None for p in problems)
            if usable or not all(still_loading(p) for p in problems) or loop.time() >= deadline:
                break
            self._stats.counters["health_retries"] += 1
            waited = self.config.health_timeout_s - (deadline - loop.time())
            if attempt % 5 == 0:
                logger.warning(
                    "waiting for the judge at %s to come up (%s); %.0f s of %g s (health_timeout_s)",
                    ", ".join(safe_url(r.url) for r in self._pool.replicas),
                    problems[0],
                    waited,
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
        self, state: _Session, replica: Replica, payload: str, limit: int
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
                    raw = await read_bounded(resp, limit if status == 200 else ERROR_BODY_BYTES)
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
        return reply_of(status, raw, f"{shown}{_CHAT_PATH}", limit, self._api_key, location, retry_after)

    def _redact(self, text: str) -> str:
        return mask_secret(text, self._api_key)

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


__all__ = [  # the client, and the names its callers import from here
    "ChatClient",
    "ChatClientConfig",
    "ChatReply",
    "Usage",
    "backoff_delay",
    "normalize_url",
    "parse_chat_completion",
    "parse_chat_reply",
    "parse_usage",
    "reply_bound",
]
