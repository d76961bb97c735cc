"""The judge's one health check: :func:`start_checked` on a running loop, :func:`check_health` blocking.

Every caller checks a judge the same way: the reward manager as it is built, the scorer's judge as it
starts on its loop, ``preflight``, the dry run and the CLIs. :func:`start_checked` starts a
:class:`ChatClient` (``/health`` answers 200 and ``/v1/models`` lists the model, waiting bounded by
``health_timeout_s`` for a judge still loading) and, for ``constrained`` output, requires a known
server dialect. :func:`check_health` runs that on a fresh client on a private loop in a worker thread
and closes it: the reward manager's constructor and the recipes' pre-flight are synchronous, and the
former may run in a thread that already owns an event loop (a Ray actor).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.dialects import DialectError


async def start_checked(client: ChatClient, *, constrained: bool = False) -> None:
    """Start ``client`` (its health check); with ``constrained``, ``DialectError`` (client closed) when
    no known constraint field fits the server. ``JudgeUnavailable`` names each URL and its fault."""
    await client.start()
    if constrained and client.dialect is None:
        await client.close()
        raise DialectError(
            f"constrained output is on but the judge server at {', '.join(client.healthy_urls())} "
            "is neither SGLang nor vLLM (its /v1/models owned_by names neither), so no request field "
            "is known to constrain it; set the judge server option (reward.reward_kwargs.judge_server "
            "or --judge-server) to sglang or vllm if it speaks that dialect, or turn constrained off"
        )


async def _check_and_close(config: ChatClientConfig, constrained: bool) -> None:
    client = ChatClient(config)
    try:
        await start_checked(client, constrained=constrained)
    finally:
        await client.close()


def check_health(config: ChatClientConfig, *, constrained: bool = False) -> None:
    """Block until a judge URL of ``config`` passes :func:`start_checked`; its error otherwise."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-health") as pool:
        pool.submit(asyncio.run, _check_and_close(config, constrained)).result()
