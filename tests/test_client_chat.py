"""ChatClient against a real loopback HTTP server: health check, retries, caps, replicas, API key."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from perception_verl.client import ChatClient, ChatClientConfig, ChatError, ClientLoopError, JudgeUnavailable
from tests.support.loopback import LoopbackServer, closed_port_url

MODEL = "loopback-model"
HELLO = [{"role": "user", "content": "hello"}]


def fast_config(*urls: str, **overrides: object) -> ChatClientConfig:
    options: dict[str, object] = {
        "model": MODEL,
        "timeout_s": 2.0,
        "max_retries": 6,
        "backoff_base_s": 0.005,
        "backoff_max_s": 0.02,
        "health_timeout_s": 3.0,
    }
    options.update(overrides)
    return ChatClientConfig(urls=urls, **options)  # type: ignore[arg-type]


async def start_and_chat(config: ChatClientConfig, messages=HELLO, count: int = 1) -> list[str]:
    async with ChatClient(config) as client:
        replies = await asyncio.gather(*(client.chat(messages, max_tokens=8) for _ in range(count)))
    return [r.text for r in replies]


def test_config_defaults_and_url_forms() -> None:
    config = ChatClientConfig(urls=("judge:30000/v1/", "http://10.0.0.2:30000"), model="m")
    assert config.health_timeout_s == 30.0
    assert config.urls == ("http://judge:30000", "http://10.0.0.2:30000")
    assert ChatClientConfig(urls="127.0.0.1:8000", model="m").urls == ("http://127.0.0.1:8000",)
    with pytest.raises(ValueError, match="max_concurrency"):
        ChatClientConfig(urls=("h:1",), model="m", max_concurrency=0)
    with pytest.raises(ValueError, match="urls"):
        ChatClientConfig(urls=(), model="m")


def test_server_down_at_start_names_url_and_cause() -> None:
    url = closed_port_url()
    with pytest.raises(JudgeUnavailable) as info:
        asyncio.run(ChatClient(fast_config(url, health_timeout_s=5.0)).start())
    message = str(info.value)
    assert url in message
    assert "connection refused" in message


def test_the_probe_at_the_deadline_reports_the_fault_not_a_clipped_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loaded machine answers a refused connection slowly; the last probe, sent at the deadline,
    must still see ``connection refused`` instead of timing out on the deadline's last millisecond."""
    from perception_verl.client import probe

    url = closed_port_url()
    real_probe = probe.probe_url

    async def slow_probe(*args: object) -> tuple[str | None, object]:
        await asyncio.sleep(0.2)
        return await real_probe(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(probe, "probe_url", slow_probe)
    config = fast_config(url, health_timeout_s=1.0, health_poll_s=0.5)
    with pytest.raises(JudgeUnavailable) as info:
        asyncio.run(ChatClient(config).start())
    assert "connection refused" in str(info.value)
    assert "timeout" not in str(info.value).split("(waited")[0]


def test_silent_server_at_start_times_out_with_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(JudgeUnavailable) as info:
            asyncio.run(ChatClient(fast_config(url, health_timeout_s=1.0)).start())
    assert url in str(info.value)
    assert "within 1 s (timeout)" in str(info.value)


def test_wrong_model_name_lists_served_models() -> None:
    with LoopbackServer(model="Qwen/Qwen2.5-7B-Instruct") as server:
        with pytest.raises(JudgeUnavailable) as info:
            asyncio.run(ChatClient(fast_config(server.url)).start())
        assert server.routes["/v1/models"] == 1
    message = str(info.value)
    assert server.url in message
    assert f"model {MODEL!r} not served; served: ['Qwen/Qwen2.5-7B-Instruct']" in message


def test_unhealthy_server_reports_http_status() -> None:
    with LoopbackServer(health_ok=False) as server, pytest.raises(JudgeUnavailable, match="HTTP 503"):
        asyncio.run(ChatClient(fast_config(server.url)).start())


def test_one_bad_replica_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    down = closed_port_url()
    with LoopbackServer() as server:

        async def run() -> tuple[list[str], list[str]]:
            async with ChatClient(fast_config(down, server.url, replica_cooldown_s=60.0)) as client:
                healthy = client.healthy_urls()
                replies = [await client.chat(HELLO, max_tokens=4) for _ in range(6)]
            return healthy, [r.url for r in replies]

        with caplog.at_level(logging.WARNING, logger="perception_verl.client.chat"):
            healthy, used = asyncio.run(run())
        assert server.outcomes["ok"] == 6
    assert healthy == [server.url]
    assert set(used) == {server.url}
    assert down in caplog.text


def test_requests_spread_over_healthy_replicas() -> None:
    with LoopbackServer(latency_s=0.02) as first, LoopbackServer(latency_s=0.02) as second:
        asyncio.run(start_and_chat(fast_config(first.url, second.url), count=20))
        assert first.outcomes["ok"] + second.outcomes["ok"] == 20
        assert first.outcomes["ok"] >= 5
        assert second.outcomes["ok"] >= 5


def test_faulty_server_every_request_answered_after_retries() -> None:
    with LoopbackServer(seed=7, fail_rate=0.1, reset_rate=0.05, hang_rate=0.05, bad_body_rate=0.05) as server:
        # Hung requests end at timeout_s; 3 s is far above any answered request's time, even under load,
        # so every timeout counted is a hang the server drew.
        config = fast_config(server.url, timeout_s=3.0, max_retries=10)

        async def run() -> tuple[list[str], dict[str, int]]:
            async with ChatClient(config) as client:
                replies = await asyncio.gather(
                    *(client.chat([{"role": "user", "content": f"q{i}"}], max_tokens=4) for i in range(60))
                )
                return [r.text for r in replies], client.metrics()

        texts, metrics = asyncio.run(run())
        outcomes = dict(server.outcomes)
    assert texts == [f"q{i}" for i in range(60)]
    for fault in ("fail", "reset", "hang", "bad_body"):
        assert outcomes.get(fault, 0) > 0, outcomes
    assert metrics["retries"] == sum(outcomes[f] for f in ("fail", "reset", "hang", "bad_body"))
    assert metrics["errors.http_500"] == outcomes["fail"]
    assert metrics["errors.reset"] == outcomes["reset"]
    assert metrics["errors.timeout"] == outcomes["hang"]
    assert metrics["errors.bad_json"] == outcomes["bad_body"]
    assert metrics["ok"] == 60


@pytest.mark.parametrize("status", [429, 503])
def test_overload_statuses_are_retried(status: int) -> None:
    with LoopbackServer(fail_rate=1.0, fail_status=status) as server:
        config = fast_config(server.url, max_retries=3)
        with pytest.raises(ChatError) as info:
            asyncio.run(start_and_chat(config))
        assert server.routes["/v1/chat/completions"] == 4
    assert info.value.kind == f"http_{status}"
    assert info.value.attempts == 4


def test_client_errors_are_not_retried() -> None:
    with LoopbackServer() as server:

        async def run() -> tuple[ChatError, dict[str, int]]:
            async with ChatClient(fast_config(server.url)) as client:
                with pytest.raises(ChatError) as info:
                    await client.chat([], max_tokens=4)
                return info.value, client.metrics()

        error, metrics = asyncio.run(run())
        assert server.routes["/v1/chat/completions"] == 1
        assert server.outcomes["bad_request"] == 1
    assert error.kind == "http_400"
    assert error.attempts == 1
    assert metrics["retries"] == 0
    assert metrics["failures.http_400"] == 1


def test_concurrency_never_exceeds_cap() -> None:
    with LoopbackServer(latency_s=0.03) as server:
        asyncio.run(start_and_chat(fast_config(server.url, max_concurrency=4), count=40))
        assert server.outcomes["ok"] == 40
        assert server.max_in_flight == 4


def test_concurrency_cap_holds_through_timeouts_and_retries() -> None:
    faults = {"fail_rate": 0.1, "reset_rate": 0.05, "hang_rate": 0.1}
    with LoopbackServer(seed=11, latency_s=0.01, **faults) as server:
        config = fast_config(server.url, max_concurrency=6, timeout_s=1.0, max_retries=12)
        asyncio.run(start_and_chat(config, count=150))
        assert server.outcomes["ok"] == 150
        assert server.outcomes["hang"] > 0
        assert server.max_in_flight == 6


def test_api_key_sent_as_bearer_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-loopback-0123456789abcdef"
    monkeypatch.setenv("JUDGE_API_KEY", secret)
    with caplog.at_level(logging.DEBUG), LoopbackServer(api_key=secret) as server:
        config = fast_config(server.url, max_retries=1, api_key_env="JUDGE_API_KEY")
        assert asyncio.run(start_and_chat(config)) == ["hello"]
        assert set(server.auth_headers) == {f"Bearer {secret}"}
        server.api_key = "another-key"
        client = ChatClient(config)
        with pytest.raises(ChatError) as info:
            asyncio.run(client.chat(HELLO, max_tokens=4))
    assert info.value.kind == "http_401"
    shown = [str(info.value), repr(info.value), repr(client), repr(config), caplog.text]
    assert all(secret not in text for text in shown)


def test_missing_api_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    config = fast_config(closed_port_url(), api_key_env="NO_SUCH_JUDGE_KEY")
    with pytest.raises(ValueError, match="NO_SUCH_JUDGE_KEY"):
        asyncio.run(ChatClient(config).start())


def test_client_is_bound_to_its_first_event_loop() -> None:
    """One session per client, on one loop: another loop is refused, not handed a second session."""
    with LoopbackServer() as server:
        client = ChatClient(fast_config(server.url))
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(client.start())
            first = loop.run_until_complete(client.chat(HELLO, max_tokens=4))
            again = [{"role": "user", "content": "again"}]
            with pytest.raises(ClientLoopError, match="one client per event loop"):
                asyncio.run(client.chat(again, max_tokens=4))
            second = loop.run_until_complete(client.chat(again, max_tokens=4))
            loop.run_until_complete(client.close())
        finally:
            loop.close()
        assert server.outcomes["ok"] == 2
    assert (first.text, second.text) == ("hello", "again")


def test_overloaded_server_rejections_are_absorbed_by_retries() -> None:
    with LoopbackServer(latency_s=0.02, max_concurrency=2, over_cap="reject") as server:
        config = fast_config(
            server.url, max_concurrency=3, max_retries=20, backoff_base_s=0.01, backoff_max_s=0.1
        )
        texts = asyncio.run(start_and_chat(config, count=30))
        assert server.outcomes["ok"] == 30
        assert server.outcomes["rejected"] > 0
    assert texts == ["hello"] * 30


def test_server_queue_mode_and_latency_hook_see_every_request() -> None:
    seen: list[int] = []

    def latency(body: dict) -> float:
        seen.append(body["max_tokens"])
        return 0.01

    with LoopbackServer(latency_fn=latency, max_concurrency=2, over_cap="queue") as server:
        asyncio.run(start_and_chat(fast_config(server.url, max_concurrency=8), count=16))
        assert server.outcomes["ok"] == 16
        assert server.max_in_flight == 8
    assert seen == [8] * 16
