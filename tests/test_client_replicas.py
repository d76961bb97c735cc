"""Replica choice and cool-down (pure bookkeeping), and the client coming back to a replica that recovered."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from perception_verl.client import ChatClient, ChatClientConfig, ChatError
from perception_verl.client.replicas import ReplicaPool
from tests.support.loopback import LoopbackServer, closed_port_url

HELLO = [{"role": "user", "content": "hello"}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_round_robin_when_idle_and_least_in_flight_when_busy() -> None:
    pool = ReplicaPool(["a", "b", "c"])
    assert [pool.pick().url for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    pool.replicas[0].in_flight = 2
    pool.replicas[1].in_flight = 1
    assert pool.pick().url == "c"


def test_cooldown_stays_bounded_at_any_failure_count() -> None:
    clock = FakeClock()
    pool = ReplicaPool(["a"], cooldown_s=5.0, max_cooldown_s=60.0, clock=clock)
    a = pool.replicas[0]
    for _ in range(2_000):
        pool.mark_down(a)
        assert a.down_until == clock.now + 60.0 or a.failures < 5
    a.failures = 10**6 - 1
    pool.mark_down(a)
    assert a.failures == 10**6
    assert a.down_until == clock.now + 60.0
    assert pool.pick() is a


def test_failed_replica_is_skipped_for_a_growing_cooldown_then_reprobed() -> None:
    clock = FakeClock()
    pool = ReplicaPool(["a", "b"], cooldown_s=5.0, max_cooldown_s=12.0, clock=clock)
    a = pool.replicas[0]
    pool.mark_down(a)
    assert {pool.pick().url for _ in range(4)} == {"b"}
    assert pool.healthy_urls() == ["b"]
    clock.now += 5.0
    assert "a" in {pool.pick().url for _ in range(2)}
    pool.mark_down(a)
    clock.now += 9.9
    assert {pool.pick().url for _ in range(4)} == {"b"}
    clock.now += 0.1
    pool.mark_down(a)
    assert a.down_until == clock.now + 12.0
    pool.mark_ok(a)
    assert pool.healthy_urls() == ["a", "b"]


def test_all_replicas_down_still_picks_the_one_back_soonest() -> None:
    clock = FakeClock()
    pool = ReplicaPool(["a", "b"], cooldown_s=5.0, clock=clock)
    pool.mark_down(pool.replicas[1])
    clock.now += 1.0
    pool.mark_down(pool.replicas[0])
    assert pool.healthy_urls() == []
    assert pool.pick().url == "b"


def test_empty_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        ReplicaPool([])


def test_client_fails_cleanly_while_down_then_recovers_on_the_same_url() -> None:
    url = closed_port_url()
    config = ChatClientConfig(
        urls=(url,), model="loopback-model", max_retries=2, backoff_base_s=0.001, replica_cooldown_s=60.0
    )
    client = ChatClient(config)

    async def down() -> ChatError:
        with pytest.raises(ChatError) as info:
            await client.chat(HELLO, max_tokens=4)
        return info.value

    loop = asyncio.new_event_loop()  # one client, one loop (the client is bound to it)
    try:
        error = loop.run_until_complete(down())
        assert (error.kind, error.attempts) == ("connection", 3)
        assert url in str(error)
        assert client.healthy_urls() == []
        with LoopbackServer(port=urlsplit(url).port or 0) as server:
            reply = loop.run_until_complete(client.chat(HELLO, max_tokens=4))
            loop.run_until_complete(client.close())
            assert server.outcomes["ok"] == 1
    finally:
        loop.close()
    assert reply.text == "hello"
    assert client.healthy_urls() == [url]
    assert client.metrics()["failures.connection"] == 1
