"""One real vLLM server (CPU build, tiny random-weight Qwen2 chat model) for the whole engine session.

The server is launched once; our own chat client's health check then waits for it to load
(``health_timeout_s`` bounds that wait), which ``test_a_loading_server_is_waited_for`` checks.
Tests marked ``engine_stops_server`` stop it, so they are moved to the end of the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.errors import JudgeUnavailable
from tests.support.engine_env import require_engine_python
from tests.support.vllm_server import START_TIMEOUT_S, VLLMServer, start_tiny_judge

SERVED_NAME = "tiny-judge"


@dataclass
class RealJudge:
    """The running server and what our client saw while it loaded."""

    server: VLLMServer
    model: str
    health_retries: int
    dialect: str | None

    @property
    def url(self) -> str:
        return self.server.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [item for item in items if item.get_closest_marker("engine_stops_server")]
    if last:
        items[:] = [item for item in items if item not in last] + last


async def _wait_with_our_client(server: VLLMServer) -> tuple[int, str | None]:
    """Our client's health check, waiting for the loading server; stops early if the process dies."""
    config = ChatClientConfig(urls=(server.url,), model=SERVED_NAME, health_timeout_s=START_TIMEOUT_S)
    client = ChatClient(config)
    waiting = asyncio.ensure_future(client.start())
    while not waiting.done():
        assert server.process is not None
        if server.process.poll() is not None:
            waiting.cancel()
            raise RuntimeError(f"vLLM exited while loading:\n{server.log_tail()}")
        await asyncio.wait({waiting}, timeout=1.0)
    try:
        waiting.result()
    finally:
        await client.close()
    return client.metrics().get("health_retries", 0), client.dialect


@pytest.fixture(scope="session")
def real_judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealJudge]:
    python = require_engine_python()
    server = start_tiny_judge(python, tmp_path_factory.mktemp("vllm"), SERVED_NAME)
    try:
        try:
            retries, dialect = asyncio.run(_wait_with_our_client(server))
        except JudgeUnavailable as err:
            raise RuntimeError(f"{err}\nvLLM log:\n{server.log_tail()}") from None
        yield RealJudge(server, SERVED_NAME, retries, dialect)
    finally:
        server.stop()
