"""Real judge servers for the engine session: one vLLM (``.venv-engine``) and one SGLang (``.venv-sglang``).

``real_judge`` is parametrized by server kind and session-scoped: pytest runs every test of one kind
against one server, stops it, then starts the other (never both at once: memory), so each kind costs
one start-up per session. Each server serves the tiny random-weight Qwen2 chat model; our own chat
client's health check then waits for it to load (``health_timeout_s`` bounds that wait), which
``test_a_loading_server_is_waited_for`` checks. Tests marked ``engine_stops_server`` stop the server,
so each runs last among its kind's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.errors import JudgeUnavailable
from tests.support import sglang_server, vllm_server
from tests.support.engine_env import require_engine_python, require_sglang_python
from tests.support.sglang_server import start_tiny_sglang_judge
from tests.support.vllm_server import start_tiny_judge

SERVED_NAME = "tiny-judge"
KINDS = ("vllm", "sglang")


class EngineServer(Protocol):
    """What the tests use of :class:`~tests.support.vllm_server.VLLMServer` and ``SGLangServer``."""

    model_dir: Path

    @property
    def url(self) -> str: ...

    @property
    def process(self) -> object: ...

    def stop(self) -> None: ...

    def log_tail(self, chars: int = 3000) -> str: ...


@dataclass
class RealJudge:
    """The running server, its kind (vllm or sglang) and what our client saw while it loaded."""

    server: EngineServer
    kind: str
    model: str
    health_retries: int
    dialect: str | None

    @property
    def url(self) -> str:
        return self.server.url


def _kind_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("real_judge") if callspec is not None else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the real-judge tests by server kind, a kind's server-stopping tests last, in the slots
    those tests held (after pytest's own grouping by fixture parameter)."""
    slots = [i for i, item in enumerate(items) if _kind_of(item) is not None]
    ours = [items[i] for i in slots]

    def key(item: pytest.Item) -> tuple[int, bool]:
        return KINDS.index(str(_kind_of(item))), item.get_closest_marker("engine_stops_server") is not None

    for slot, item in zip(slots, sorted(ours, key=key), strict=True):
        items[slot] = item


async def _wait_with_our_client(server: EngineServer, start_timeout_s: float) -> tuple[int, str | None]:
    """Our client's health check, waiting for the loading server; stops early if the process dies."""
    config = ChatClientConfig(urls=(server.url,), model=SERVED_NAME, health_timeout_s=start_timeout_s)
    client = ChatClient(config)
    waiting = asyncio.ensure_future(client.start())
    while not waiting.done():
        process = server.process
        assert process is not None
        if process.poll() is not None:  # type: ignore[attr-defined]
            waiting.cancel()
            raise RuntimeError(f"the server exited while loading:\n{server.log_tail()}")
        await asyncio.wait({waiting}, timeout=1.0)
    try:
        waiting.result()
    finally:
        await client.close()
    return client.metrics().get("health_retries", 0), client.dialect


@pytest.fixture(scope="session", params=KINDS)
def real_judge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealJudge]:
    kind: str = request.param
    folder = tmp_path_factory.mktemp(kind)
    server: EngineServer
    if kind == "vllm":
        server = start_tiny_judge(require_engine_python(), folder, SERVED_NAME)
        start_timeout_s = vllm_server.START_TIMEOUT_S
    else:
        server = start_tiny_sglang_judge(require_sglang_python(), folder, SERVED_NAME)
        start_timeout_s = sglang_server.START_TIMEOUT_S
    try:
        try:
            retries, dialect = asyncio.run(_wait_with_our_client(server, start_timeout_s))
        except JudgeUnavailable as err:
            raise RuntimeError(f"{err}\n{kind} log:\n{server.log_tail()}") from None
        yield RealJudge(server, kind, SERVED_NAME, retries, dialect)
    finally:
        server.stop()
