"""Prefix-cache reuse of a batch of judge requests, read from a real server's own counters.

:func:`measure_prefix_reuse` sends the requests (constrained verdicts, as the judge does) so that no
earlier batch on the same server can supply cached prompt tokens, and returns the change in the
server's counters of prompt tokens looked up / found in its prefix cache next to the ``usage`` the
replies carried:

- vLLM: each batch has a ``cache_salt`` of its own (vLLM keys its prefix-cache blocks by salt);
  counters ``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``.
- SGLang (``server="sglang"``): no salt; its radix cache is flushed before the batch; counters
  ``sglang:prompt_tokens_total`` / ``sglang:cached_tokens_total``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perception_verl.client.chat import ChatClient, ChatClientConfig
from tests.support.vllm_server import prefix_cache_counters


@dataclass(frozen=True)
class PrefixReuse:
    """Prompt tokens the server looked up in its prefix cache and found there, for one batch."""

    queried: float
    hit: float
    usage_prompt: int
    usage_cached: int
    requests: int
    wall_s: float

    @property
    def share(self) -> float:
        return self.hit / self.queried if self.queried else 0.0


async def _send(
    client: ChatClient, batch: Sequence[tuple[list[dict[str, Any]], str]], salt: str | None, concurrency: int
) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)
    extra = {"cache_salt": salt} if salt is not None else None

    async def one(messages: list[dict[str, Any]], regex: str) -> Any:
        async with gate:
            return await client.chat(messages, max_tokens=512, temperature=0.0, regex=regex, extra_body=extra)

    await client.start()
    try:
        return list(await asyncio.gather(*(one(m, r) for m, r in batch)))
    finally:
        await client.close()


def measure_prefix_reuse(
    url: str,
    model: str,
    batch: Sequence[tuple[list[dict[str, Any]], str]],
    *,
    salt: str,
    concurrency: int = 8,
    server: str = "vllm",
) -> PrefixReuse:
    """Send ``batch`` ((messages, verdict regex) pairs) to the ``server`` (vllm or sglang) at ``url``;
    its cache reuse. ``salt`` is vLLM's cache salt; SGLang's cache is flushed first instead."""
    import time

    from tests.support import sglang_server

    if server == "sglang":
        counters = sglang_server.prefix_cache_counters
        sglang_server.flush_cache(url)
    elif server == "vllm":
        counters = prefix_cache_counters
    else:
        raise ValueError(f"server must be vllm or sglang, got {server!r}")
    config = ChatClientConfig(urls=(url,), model=model, server=server, max_concurrency=concurrency)
    before = counters(url)
    started = time.perf_counter()
    replies = asyncio.run(_send(ChatClient(config), batch, salt if server == "vllm" else None, concurrency))
    wall = time.perf_counter() - started
    after = counters(url)
    usages = [r.usage for r in replies if r.usage is not None]
    return PrefixReuse(
        queried=after["queries"] - before["queries"],
        hit=after["hits"] - before["hits"],
        usage_prompt=sum(u.prompt_tokens for u in usages),
        usage_cached=sum(u.cached_tokens or 0 for u in usages),
        requests=len(replies),
        wall_s=wall,
    )
