"""A latency model of an SGLang-served 32B judge with a radix (prefix) cache, for the loopback server.

Per request: ``base + prefill + decode`` where

- prefill covers only the prompt tokens not already in the prefix cache, and runs through one
  server-wide FIFO queue at ``prefill_tok_per_s`` (prefill is compute-bound: the GPU's prefill
  throughput is shared by all requests, so a long uncached prompt delays the ones behind it);
- decode covers the verdict tokens at ``decode_tok_per_s`` per sequence, concurrently for all
  running requests (decode is memory-bound and batched: each sequence advances about one token
  per engine step whatever the batch size, within the server's concurrency cap);
- ``base`` is the fixed cost of a request (HTTP, tokenisation, scheduling, first step).

The prefix cache (:class:`PrefixCache`) stands in for SGLang's radix tree: prompts are cut into
blocks of ``block_tokens`` tokens, each block is keyed by a hash of everything up to and including
it (so a block matches only after an identical prefix), and blocks are kept in LRU order up to
``cache_tokens``. A prompt's cached part is its longest run of leading blocks found in the cache;
its blocks are then inserted. SGLang matches single tokens; the block granularity (4 tokens) rounds
each match down by less than one block, a small understatement of the cache for every layout alike.

Tokens are approximated from characters: prompt tokens = ceil(chars / 4) (the usual rule of
thumb for English BPE text), verdict tokens = ceil(chars / 2) (tag text such as
``<info1>1</info1>`` splits into many short tokens). The prompt is the text SGLang would tokenise:
Qwen2.5's chat template around the messages.

Default parameters, for Qwen2.5-32B-Instruct-AWQ on one 80 GB GPU (A800/A100 class, as in the paper):

- ``prefill_tok_per_s = 5000``: prefill costs about 2 x 32.5e9 = 65 GFLOP per token; AWQ kernels
  dequantise to 16-bit for large-batch GEMMs, so prefill runs near the 16-bit rate. At 312 TFLOP/s
  (A100/A800 dense BF16) and 60-100% effective utilisation that is about 3,000-4,800 tokens/s;
  about 9,000 tokens/s on an H100. 5,000 sits between, near the A800 end.
- ``decode_tok_per_s = 40`` per sequence: decode reads the ~18 GB of 4-bit weights (plus the KV
  cache) every step; at about 2 TB/s that is ~10 ms per step for one sequence and ~20-30 ms per step
  with 64 running sequences and their KV cache, i.e. 30-50 tokens/s per sequence.
- ``cache_tokens = 190000``: Qwen2.5-32B has 64 layers with 8 KV heads of dimension 128, i.e.
  64 x 8 x 128 x 2 (K and V) x 2 bytes = 256 KiB of KV cache per token; with ~18 GB of weights and
  ~50 GB left for the KV pool on an 80 GB card, that is about 190k tokens.
- ``base_s = 0.02``: HTTP round trip, tokenisation and scheduling on the server.

``time_scale`` divides every modelled duration, so a benchmark of a minute of judge time runs in
seconds; ratios between runs under the same scale are unaffected as long as the client's own CPU
time stays small next to the scaled latencies.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4.0
VERDICT_CHARS_PER_TOKEN = 2.0


@dataclass(frozen=True)
class JudgeCostParams:
    """Parameters of :class:`PrefillLatencyModel` (see the module docstring for their source)."""

    base_s: float = 0.02
    prefill_tok_per_s: float = 5000.0
    decode_tok_per_s: float = 40.0
    cache_tokens: int = 190_000
    block_tokens: int = 4
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("prefill_tok_per_s", "decode_tok_per_s", "time_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"JudgeCostParams.{name} must be > 0, got {getattr(self, name)!r}")
        if self.base_s < 0 or self.cache_tokens < 0 or self.block_tokens < 1:
            raise ValueError("JudgeCostParams: base_s and cache_tokens must be >= 0, block_tokens >= 1")


def prompt_tokens(text: str) -> int:
    """Approximate prompt tokens of ``text`` (chars / 4, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def verdict_tokens(chars: int) -> int:
    """Approximate tokens of a verdict of ``chars`` characters such as ``<info1>1</info1> <info2>0</info2>``
    (chars / 2, rounded up), plus the end-of-sequence token."""
    return math.ceil(chars / VERDICT_CHARS_PER_TOKEN) + 1


def chat_template(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text SGLang tokenises for a Qwen2.5 chat request (ChatML with a generation prompt)."""
    parts = [f"<|im_start|>{m.get('role', 'user')}\n{m.get('content', '')}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


class PrefixCache:
    """Block-hashed LRU prefix cache measured in (approximate) tokens."""

    def __init__(self, capacity_tokens: int, block_tokens: int = 4) -> None:
        self.block_chars = int(block_tokens * CHARS_PER_TOKEN)
        self.capacity_blocks = capacity_tokens // block_tokens
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def _keys(self, text: str) -> list[bytes]:
        keys = []
        digest = hashlib.blake2b(digest_size=16)
        full = len(text) - len(text) % self.block_chars
        for start in range(0, full, self.block_chars):
            digest.update(text[start : start + self.block_chars].encode("utf-8", "surrogatepass"))
            keys.append(digest.copy().digest())
        return keys

    def match_and_insert(self, text: str) -> int:
        """Characters of ``text`` served from the cache (a whole-block prefix); then cache all its blocks."""
        keys = self._keys(text)
        hit = 0
        for key in keys:
            if key not in self._blocks:
                break
            hit += 1
        for key in reversed(keys):  # the prefix ends up most recently used, evicted last
            self._blocks[key] = None
            self._blocks.move_to_end(key)
        while len(self._blocks) > self.capacity_blocks:
            self._blocks.popitem(last=False)
        return hit * self.block_chars


class PrefillLatencyModel:
    """``latency_fn`` for the loopback server: prefix-cache-aware prefill queue plus per-sequence decode.

    ``render(body)`` gives the prompt text the judge model would see and ``verdict_chars(body)`` the
    length of its answer. Counters: ``requests``, ``prompt_tokens``, ``cached_tokens``,
    ``prefill_busy_s`` (unscaled seconds of prefill work).
    """

    def __init__(
        self,
        params: JudgeCostParams,
        render: Callable[[dict[str, Any]], str],
        verdict_chars: Callable[[dict[str, Any]], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.params = params
        self.render = render
        self.verdict_chars = verdict_chars
        self.clock = clock
        self.cache = PrefixCache(params.cache_tokens, params.block_tokens)
        self._lock = threading.Lock()
        self._prefill_free_at = 0.0
        self.requests = 0
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.prefill_busy_s = 0.0

    def cost(self, text: str, answer_chars: int) -> tuple[int, int, float, float]:
        """(prompt tokens, cached tokens, prefill s, base + decode s), unscaled; updates the cache."""
        p = self.params
        total = prompt_tokens(text)
        cached = min(total, math.floor(self.cache.match_and_insert(text) / CHARS_PER_TOKEN))
        prefill = (total - cached) / p.prefill_tok_per_s
        decode = verdict_tokens(answer_chars) / p.decode_tok_per_s
        return total, cached, prefill, p.base_s + decode

    def __call__(self, body: dict[str, Any]) -> float:
        text = self.render(body)
        answer_chars = self.verdict_chars(body)
        scale = self.params.time_scale
        with self._lock:
            total, cached, prefill, rest = self.cost(text, answer_chars)
            now = self.clock()
            start = max(now, self._prefill_free_at)
            done = start + prefill / scale
            self._prefill_free_at = done
            self.requests += 1
            self.prompt_tokens += total
            self.cached_tokens += cached
            self.prefill_busy_s += prefill
        return (done - now) + rest / scale

    def stats(self) -> dict[str, float]:
        share = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "cached_share": share,
            "prefill_busy_s": self.prefill_busy_s,
        }


def idle_round_trip_s(params: JudgeCostParams, uncached_tokens: int, answer_chars: int) -> float:
    """Unscaled latency of one request on an idle server with ``uncached_tokens`` to prefill."""
    decode = verdict_tokens(answer_chars) / params.decode_tok_per_s
    return params.base_s + uncached_tokens / params.prefill_tok_per_s + decode
