"""Choosing a server replica for each request: least in flight among the healthy, round-robin on ties.

A replica that refuses connections is skipped for a cool-down, then tried again by the next real
request (the re-probe); each further failure doubles its cool-down up to a cap. When every replica
is cooling down, the one whose cool-down ends first is still tried, so requests never stall.
Plain bookkeeping, no I/O: safe to share between tasks of one event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from perception_verl.client.backoff import capped_doubling


@dataclass
class Replica:
    """One server base URL and its live state."""

    url: str
    in_flight: int = 0
    failures: int = 0
    down_until: float = 0.0
    sent: int = 0

    def healthy(self, now: float) -> bool:
        return self.down_until <= now


class ReplicaPool:
    """Spreads requests over ``urls`` and tracks which ones are cooling down after failures."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        cooldown_s: float = 5.0,
        max_cooldown_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("ReplicaPool needs at least one URL")
        self.replicas = [Replica(url) for url in urls]
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._next = 0

    def pick(self) -> Replica:
        """The replica for the next request (its ``in_flight`` is not changed here)."""
        now = self._clock()
        healthy = [r for r in self.replicas if r.healthy(now)]
        if not healthy:
            return min(self.replicas, key=lambda r: r.down_until)
        count = len(self.replicas)
        order = [self.replicas[(self._next + i) % count] for i in range(count)]
        choice = min((r for r in order if r.healthy(now)), key=lambda r: r.in_flight)
        self._next = (self.replicas.index(choice) + 1) % count
        return choice

    def mark_ok(self, replica: Replica) -> None:
        replica.failures = 0
        replica.down_until = 0.0

    def mark_down(self, replica: Replica) -> None:
        """Skip ``replica`` for a cool-down that doubles with each consecutive failure, up to the cap."""
        replica.failures += 1
        delay = capped_doubling(self._cooldown_s, replica.failures - 1, self._max_cooldown_s)
        replica.down_until = self._clock() + delay

    def healthy_urls(self) -> list[str]:
        now = self._clock()
        return [r.url for r in self.replicas if r.healthy(now)]


def with_scheme(url: str) -> str:
    """``url`` with ``http://`` in front when it names no scheme (``host:port`` -> ``http://host:port``)."""
    return url if "://" in url else f"http://{url}"


def url_list(values: Sequence[str] | str | None) -> tuple[str, ...]:
    """Replica URLs from a comma list, repeated options, or both (``["a,b", "c"]`` -> ``(a, b, c)``).

    Every tool takes replicas this way, as the recipes' ``JUDGE_URL`` does.
    """
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    return tuple(url.strip() for item in items for url in item.split(",") if url.strip())
