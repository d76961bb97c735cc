"""Run the judge's start-up health check to completion from synchronous code.

The reward manager's constructor and the recipes' pre-flight are synchronous, and the former may
run inside a thread that already owns an event loop (a Ray actor). :func:`check_started` therefore
starts what it is given (a :class:`ChatClient`, whose start waits, bounded by ``health_timeout_s``,
for a judge still loading; or the scorer's whole judge) on a private loop in a worker thread and
closes it again; the caller's own client later opens its session on its own loop.
:func:`check_health` is that check for a bare client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from perception_verl.client.chat import ChatClient, ChatClientConfig


class Startable(Protocol):
    """What the start-up check starts and closes: a :class:`ChatClient` or a judge over one."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


async def _start_and_close(make: Callable[[], Startable]) -> None:
    started = make()
    try:
        await started.start()
    finally:
        await started.close()


def check_started(make: Callable[[], Startable]) -> None:
    """Build ``make()``, start it and close it on a private event loop in a worker thread, blocking;
    the start's error (``JudgeUnavailable``, ``DialectError``, ...) is raised."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-health") as pool:
        pool.submit(asyncio.run, _start_and_close(make)).result()


def check_health(config: ChatClientConfig) -> None:
    """Block until a judge URL of ``config`` is usable; ``JudgeUnavailable`` naming each URL otherwise."""
    check_started(lambda: ChatClient(config))
