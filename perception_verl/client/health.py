"""Run the judge's start-up health check to completion from synchronous code.

The reward manager's constructor and the recipes' pre-flight are synchronous, and the former may
run inside a thread that already owns an event loop (a Ray actor). :func:`check_health` therefore
runs :meth:`ChatClient.start <perception_verl.client.chat.ChatClient.start>` (which waits, bounded
by ``health_timeout_s``, for a judge still loading) on a private loop in a worker thread and closes
the client again; the caller's own client later opens its session on its own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from perception_verl.client.chat import ChatClient, ChatClientConfig


async def _probe(config: ChatClientConfig) -> None:
    client = ChatClient(config)
    try:
        await client.start()
    finally:
        await client.close()


def run_blocking(probe: Callable[[], Awaitable[None]]) -> None:
    """Run ``probe()`` to completion on a private event loop in a worker thread; its error is raised."""

    async def main() -> None:
        await probe()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-health") as pool:
        pool.submit(asyncio.run, main()).result()


def check_health(config: ChatClientConfig) -> None:
    """Block until a judge URL of ``config`` is usable; ``JudgeUnavailable`` naming each URL otherwise."""
    run_blocking(lambda: _probe(config))
