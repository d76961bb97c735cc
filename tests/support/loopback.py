"""A loopback OpenAI-compatible chat server for tests and benchmarks, with fault switches.

:class:`LoopbackServer` runs an aiohttp web app on 127.0.0.1 (an ephemeral port unless ``port`` is
given, e.g. to bring a "down" URL back) in a background thread with its own event loop. It serves
``GET /health``, ``GET /v1/models`` and ``POST /v1/chat/completions`` in the shapes SGLang's
OpenAI-compatible server uses; the assistant text comes from a pluggable
``responder(messages, body) -> str``. A "down" server is just a URL where nothing listens
(:func:`closed_port_url`).

Switches are plain attributes, read on every request, so a test may change them at any time:
``latency_s`` (fixed delay) or ``latency_fn(body) -> seconds`` (a latency model: prefill, cache);
``max_concurrency`` with ``over_cap`` = ``"queue"`` (wait, as SGLang's scheduler does) or
``"reject"`` (503); fault rates ``fail_rate`` (HTTP ``fail_status``, default 500), ``reset_rate``
(connection aborted), ``hang_rate`` (no answer for ``hang_s``), ``bad_body_rate`` (200 with a body
that is not JSON), ``malformed_rate`` and ``wrong_count_rate`` (content faults, which requests
carrying SGLang's ``regex`` constraint never get); ``health_ok``; ``model``;
``api_key`` (require ``Authorization: Bearer``); ``owned_by`` (the model card's owner, ``"sglang"``
by default: set another to pose as a server of unknown dialect); ``finish_reason`` of every answer
(``"stop"``; ``"length"`` poses as an answer cut off at ``max_tokens``).
Hostile switches: ``fail_text`` (the error message of an injected failure, e.g. a context-length 400)
and ``retry_after`` (its ``Retry-After`` header); ``redirect_to`` (answer every chat request with
``redirect_status``, default 307, and ``Location: <redirect_to>/v1/chat/completions``).
Faults are drawn from a seeded ``random.Random``.
:meth:`LoopbackServer.hold` makes chat requests wait (received, counted in flight, not answered)
until :meth:`LoopbackServer.release`: tests order events with it instead of with latencies.

Counters: ``routes`` (requests per path), ``outcomes`` (per chat outcome), ``in_flight`` and
``max_in_flight`` (chat requests received and not yet answered, queued ones included, whose client
is still connected: a client that timed out and hung up no longer counts, as SGLang aborts such a
request; ``max_in_flight`` is sampled as each request arrives);
``received`` keeps chat request bodies and ``auth_headers`` their Authorization headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

Responder = Callable[[list[dict[str, Any]], dict[str, Any]], str]
LatencyFn = Callable[[dict[str, Any]], float]

_LAST_TAG = re.compile(r"\s*<info(\d+)>[^<]*</info\1>\s*$")
_FAULTS = ("fail", "reset", "hang", "bad_body", "malformed", "wrong_count")
_CONTENT_FAULTS = ("malformed", "wrong_count")


def echo_responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Answer with the text of the last message (default responder)."""
    content = messages[-1].get("content", "") if messages else ""
    return content if isinstance(content, str) else str(content)


def drop_last_tag(content: str) -> str:
    """Default wrong-count mutation: remove the last ``<infoK>..</infoK>`` tag."""
    return _LAST_TAG.sub("", content, count=1)


def word_count(text: str) -> int:
    return len(text.split())


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        parts.append(str(content))
    return "\n".join(parts)


class LoopbackServer:
    """OpenAI-compatible chat server on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        model: str = "loopback-model",
        seed: int = 0,
        latency_s: float = 0.0,
        latency_fn: LatencyFn | None = None,
        max_concurrency: int | None = None,
        over_cap: str = "queue",
        fail_rate: float = 0.0,
        fail_status: int = 500,
        reset_rate: float = 0.0,
        hang_rate: float = 0.0,
        hang_s: float = 3600.0,
        bad_body_rate: float = 0.0,
        malformed_rate: float = 0.0,
        wrong_count_rate: float = 0.0,
        malformed_text: str = "The response mentions most of the facts.",
        wrong_count_fn: Callable[[str], str] = drop_last_tag,
        health_ok: bool = True,
        api_key: str | None = None,
        token_count: Callable[[str], int] = word_count,
        keep_bodies: int = 100_000,
        port: int = 0,
        owned_by: str = "sglang",
        finish_reason: str = "stop",
        fail_text: str = "injected server error",
        retry_after: str | None = None,
        redirect_to: str | None = None,
        redirect_status: int = 307,
    ) -> None:
        if over_cap not in ("queue", "reject"):
            raise ValueError(f"over_cap must be 'queue' or 'reject', got {over_cap!r}")
        self.responder = responder
        self.model = model
        self.latency_s = latency_s
        self.latency_fn = latency_fn
        self.max_concurrency = max_concurrency
        self.over_cap = over_cap
        self.fail_rate = fail_rate
        self.fail_status = fail_status
        self.reset_rate = reset_rate
        self.hang_rate = hang_rate
        self.hang_s = hang_s
        self.bad_body_rate = bad_body_rate
        self.malformed_rate = malformed_rate
        self.wrong_count_rate = wrong_count_rate
        self.malformed_text = malformed_text
        self.wrong_count_fn = wrong_count_fn
        self.health_ok = health_ok
        self.api_key = api_key
        self.token_count = token_count
        self.rng = random.Random(seed)
        self.routes: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.max_in_flight = 0
        self._active: dict[int, web.Request] = {}
        self.received: deque[dict[str, Any]] = deque(maxlen=keep_bodies)
        self.auth_headers: deque[str | None] = deque(maxlen=keep_bodies)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._queue: asyncio.Semaphore | None = None
        self._queue_size: int | None = None
        self._gate: asyncio.Event | None = None
        self.port = port
        self.owned_by = owned_by
        self.finish_reason = finish_reason
        self.fail_text = fail_text
        self.retry_after = retry_after
        self.redirect_to = redirect_to
        self.redirect_status = redirect_status

    # ------------------------------------------------------------------ lifecycle

    @property
    def in_flight(self) -> int:
        """Chat requests being handled whose client is still connected."""
        live = list(self._active.values())
        return sum(1 for r in live if r.transport is not None and not r.transport.is_closing())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind ``port`` (0: ephemeral) and serve in a daemon thread; returns once it is listening."""
        if self._thread is not None:
            raise RuntimeError("LoopbackServer already started")
        loop = asyncio.new_event_loop()
        started: dict[str, BaseException] = {}
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._startup())
            except BaseException as err:
                started["error"] = err
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in started:
            self._thread.join()
            self._thread = None
            raise RuntimeError("loopback server failed to start") from started["error"]

    def stop(self) -> None:
        """Wake hanging handlers, close the listener and connections, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        future.result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._thread = None
        self._loop = None

    def hold(self) -> None:
        """Keep chat requests waiting, once received, until :meth:`release`."""
        self._on_loop(lambda: self._gate.clear() if self._gate is not None else None)

    def release(self) -> None:
        """Let held chat requests (and later ones) be answered."""
        self._on_loop(lambda: self._gate.set() if self._gate is not None else None)

    def _on_loop(self, action: Callable[[], Any]) -> None:
        if self._loop is None:
            raise RuntimeError("LoopbackServer is not started")

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    async def _startup(self) -> None:
        self._stopping = asyncio.Event()
        self._gate = asyncio.Event()
        self._gate.set()
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, handler_cancellation=True, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._stopping is not None and self._runner is not None
        self._stopping.set()
        await self._runner.cleanup()

    def reset_counters(self) -> None:
        self.routes.clear()
        self.outcomes.clear()
        self.max_in_flight = self.in_flight
        self.received.clear()
        self.auth_headers.clear()

    # ------------------------------------------------------------------ routes

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _health(self, request: web.Request) -> web.Response:
        self.routes["/health"] += 1
        if not self.health_ok:
            return web.Response(status=503, text="unhealthy")
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        self.routes["/v1/models"] += 1
        if not self._authorized(request):
            return _error(401, "invalid API key")
        card = {"id": self.model, "object": "model", "created": int(time.time()), "owned_by": self.owned_by}
        return web.json_response({"object": "list", "data": [card]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.routes["/v1/chat/completions"] += 1
        self._active[id(request)] = request
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self._active.pop(id(request), None)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.auth_headers.append(request.headers.get("Authorization"))
        if not self._authorized(request):
            self.outcomes["unauthorized"] += 1
            return _error(401, "invalid API key")
        try:
            body = await request.json()
        except ValueError:
            self.outcomes["bad_request"] += 1
            return _error(400, "body is not JSON")
        self.received.append(body)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            self.outcomes["bad_request"] += 1
            return _error(400, "messages must be a non-empty list")
        if body.get("model") != self.model:
            self.outcomes["unknown_model"] += 1
            return _error(404, f"model {body.get('model')!r} not found")
        if self.redirect_to is not None:
            self.outcomes["redirect"] += 1
            location = f"{self.redirect_to}/v1/chat/completions"
            return web.Response(status=self.redirect_status, headers={"Location": location})
        cap = self.max_concurrency
        if cap is not None and self.over_cap == "reject" and self.in_flight > cap:
            self.outcomes["rejected"] += 1
            return _error(503, "server busy")
        async with self._slot(cap):
            assert self._gate is not None
            await self._gate.wait()
            return await self._generate(request, body, messages)

    def _slot(self, cap: int | None) -> asyncio.Semaphore | _NoSlot:
        if cap is None or self.over_cap != "queue":
            return _NoSlot()
        if self._queue is None or self._queue_size != cap:
            self._queue, self._queue_size = asyncio.Semaphore(cap), cap
        return self._queue

    def _draw_fault(self, constrained: bool) -> str | None:
        rates = {
            "fail": self.fail_rate,
            "reset": self.reset_rate,
            "hang": self.hang_rate,
            "bad_body": self.bad_body_rate,
            "malformed": self.malformed_rate,
            "wrong_count": self.wrong_count_rate,
        }
        u = self.rng.random()
        edge = 0.0
        for fault in _FAULTS:
            edge += rates[fault]
            if u < edge:
                return None if constrained and fault in _CONTENT_FAULTS else fault
        return None

    async def _generate(
        self, request: web.Request, body: dict[str, Any], messages: list[dict[str, Any]]
    ) -> web.StreamResponse:
        fault = self._draw_fault(constrained=bool(body.get("regex")))
        if fault == "hang":
            self.outcomes["hang"] += 1
            assert self._stopping is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.hang_s)
            return _error(504, "hung request released")
        delay = self.latency_fn(body) if self.latency_fn is not None else self.latency_s
        if delay > 0:
            await asyncio.sleep(delay)
        if fault == "fail":
            self.outcomes["fail"] += 1
            response = _error(self.fail_status, self.fail_text)
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        if fault == "reset":
            self.outcomes["reset"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fault == "bad_body":
            self.outcomes["bad_body"] += 1
            return web.Response(status=200, text="<html>proxy error</html>", content_type="text/html")
        content = self.responder(messages, body)
        if fault == "malformed":
            content = self.malformed_text
        elif fault == "wrong_count":
            content = self.wrong_count_fn(content)
        self.outcomes[fault or "ok"] += 1
        return web.json_response(self._completion(content, messages))

    def _completion(self, content: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        prompt_tokens = self.token_count(_prompt_text(messages))
        completion_tokens = self.token_count(content)
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _NoSlot:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _error(status: int, message: str) -> web.Response:
    payload = {"object": "error", "message": message, "type": "BadRequestError", "code": status}
    return web.json_response(payload, status=status)
