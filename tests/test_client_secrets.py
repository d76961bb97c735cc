"""The API key never leaks: a real loopback server echoes the Authorization header back in every way.

The key straddles the 200-character cut of error bodies, is echoed whole and cut short, in error
bodies, in chat replies and in the model list; no run of 8 of its characters may appear in log
records, exception text or counters.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from aiohttp import web

from perception_verl.client import ChatClient, ChatClientConfig, ChatError, JudgeUnavailable
from perception_verl.client.chat import backoff_delay
from perception_verl.client.redact import MIN_RUN, mask_secret, masked_snippet
from tests.support.loopback import LoopbackServer

SECRET = "sk-live-7Hq2Zr9LmW4xYp0Bv6Nc3Td8Ka5Ue1Jg"
MODEL = "loopback-model"
HELLO = [{"role": "user", "content": "hello"}]


def runs_of(secret: str, size: int = MIN_RUN) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaked(text: str) -> list[str]:
    return sorted(run for run in runs_of(SECRET) if run in text)


class EchoingServer(LoopbackServer):
    """A loopback server that puts the request's Authorization header in what it sends back.

    ``mode``: ``"error"`` (HTTP ``status`` whose body is ``pad`` characters, then the header, so the
    key starts at ``pad + 7``, then more text), ``"partial"`` (only the first ``cut`` characters of
    the header), ``"reply"`` (a 200 whose assistant text is the header) or ``"models"`` (the model
    list names the header).
    """

    def __init__(self, mode: str, *, status: int = 500, pad: int = 190, cut: int = 20) -> None:
        super().__init__()
        self.mode, self.status, self.pad, self.cut = mode, status, pad, cut

    def _header(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "")

    async def _models(self, request: web.Request) -> web.Response:
        if self.mode != "models":
            return await super()._models(request)
        return web.json_response({"object": "list", "data": [{"id": f"served-as {self._header(request)}"}]})

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        header = self._header(request)
        self.auth_headers.append(header)
        if self.mode == "reply":
            body = self._completion(f"you sent {header}", [{"role": "user", "content": "x"}])
            return web.json_response(body)
        echoed = header[: self.cut] if self.mode == "partial" else header
        text = "x" * self.pad + echoed + " was your Authorization header " + "y" * 300
        return web.Response(status=self.status, text=text)


def config(url: str, **overrides: Any) -> ChatClientConfig:
    options: dict[str, Any] = {
        "model": MODEL,
        "api_key_env": "PV_TEST_JUDGE_KEY",
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.002,
        "health_timeout_s": 3.0,
    }
    options.update(overrides)
    return ChatClientConfig(urls=(url,), **options)


def outputs(client: ChatClient, error: BaseException | None, caplog: pytest.LogCaptureFixture) -> str:
    shown = [caplog.text, repr(client), repr(client.metrics())]
    shown += [record.getMessage() for record in caplog.records]
    if error is not None:
        shown += [str(error), repr(error), str(error.args)]
    return "\n".join(shown)


async def chat_once(client: ChatClient) -> tuple[str | None, BaseException | None]:
    try:
        await client.start()
        reply = await client.chat(HELLO, max_tokens=8)
        return reply.text, None
    except (ChatError, JudgeUnavailable) as err:
        return None, err
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("mode", "status", "pad"),
    [
        ("error", 500, 185),  # key straddles character 200 of the body, retried
        ("error", 401, 185),  # not retried
        ("error", 400, 0),
        ("error", 503, 10),
        ("partial", 500, 180),  # only the head of the key is echoed
        ("partial", 401, 0),
    ],
)
def test_echoed_key_in_error_bodies_never_shows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mode: str, status: int, pad: int
) -> None:
    monkeypatch.setenv("PV_TEST_JUDGE_KEY", SECRET)
    with caplog.at_level(logging.DEBUG), EchoingServer(mode, status=status, pad=pad) as server:
        client = ChatClient(config(server.url))
        text, error = asyncio.run(chat_once(client))
        assert server.auth_headers[-1] == f"Bearer {SECRET}"
    assert text is None and isinstance(error, ChatError) and error.kind == f"http_{status}"
    assert "***" in str(error)
    assert leaked(outputs(client, error, caplog)) == []


def test_echoed_key_in_a_reply_and_in_the_model_list_never_shows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PV_TEST_JUDGE_KEY", SECRET)
    with caplog.at_level(logging.DEBUG), EchoingServer("reply") as server:
        client = ChatClient(config(server.url))
        text, error = asyncio.run(chat_once(client))
    assert error is None and text == "you sent Bearer ***"
    assert leaked(outputs(client, None, caplog)) == []
    with caplog.at_level(logging.DEBUG), EchoingServer("models") as server:
        client = ChatClient(config(server.url))
        text, error = asyncio.run(chat_once(client))
    assert isinstance(error, JudgeUnavailable) and "not served" in str(error)
    assert leaked(outputs(client, error, caplog)) == []


@pytest.mark.parametrize("cut", [5, 8, 12, 20, 33, len(SECRET)])
def test_mask_covers_every_run_of_eight_and_cuts_after_masking(cut: int) -> None:
    for head in (SECRET[:cut], SECRET[-cut:], SECRET[3 : 3 + cut]):
        text = "a" * 195 + head + "b" * 10 + SECRET + "c"
        masked = mask_secret(text, SECRET)
        assert leaked(masked) == [] and masked.startswith("a" * 195) and masked.endswith("b" * 10 + "***c")
        assert leaked(masked_snippet(text, SECRET, 200)) == []
    assert mask_secret("plain text", SECRET) == "plain text"
    assert mask_secret("abc abd abc", "abc") == "*** abd ***"
    assert mask_secret("no key", None) == "no key" and mask_secret("", SECRET) == ""


def test_backoff_is_bounded_at_any_retry_count() -> None:
    rng = random.Random(0)
    for retry in (0, 10, 1_023, 1_024, 1_100, 10**6):
        delay = backoff_delay(retry, 0.5, 8.0, rng)
        assert 0.0 <= delay <= 8.0
