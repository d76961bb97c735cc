"""The interface every judge backend implements, and the result it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# The failure of a judge reply cut off at its token budget (finish_reason=length).
TRUNCATED = "truncated"


@dataclass(frozen=True)
class JudgeResult:
    """Verdicts for one (annotations, response) pair, or the reason there are none.

    ``verdicts`` holds one 0/1 per annotation, in order, or ``None`` when the judge failed;
    ``failure`` then names why (``"timeout"``, ``"http_503"``, ``"malformed"``, ...).
    ``requests`` counts HTTP requests this call sent (0 for a cache hit or an offline judge);
    ``prompt_tokens``, ``cached_tokens`` (prompt tokens the server found in its prefix cache, 0 where
    it does not report them) and ``completion_tokens`` sum the ``usage`` of those requests.
    ``retry_after_s`` is the server's ``Retry-After`` hint of a failed request, when it gave one.
    """

    verdicts: tuple[int, ...] | None
    failure: str | None = None
    latency_s: float = 0.0
    requests: int = 0
    cached: bool = False
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.verdicts is not None


@runtime_checkable
class Judge(Protocol):
    """A perception judge: says which annotations a response reflects."""

    async def start(self) -> None:
        """Check the judge is usable (health check); raise with a clear message if not."""

    async def judge(self, annotations: Sequence[str], response: str) -> JudgeResult:
        """Judge one response against its problem's annotations. Never raises on judge faults."""

    async def close(self) -> None:
        """Release connections and other resources."""
