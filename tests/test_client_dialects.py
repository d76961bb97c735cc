"""Server dialects, usage accounting and truncated replies, against the loopback judge (real HTTP)."""

from __future__ import annotations

import asyncio
import json

import pytest

from perception_verl.client.chat import ChatClientConfig, parse_chat_reply, parse_usage
from perception_verl.client.dialects import (
    DialectError,
    dialect_of_models,
    regex_fields,
    resolve_dialect,
)
from perception_verl.config import RewardConfigError, from_kwargs
from perception_verl.judge.prompt import verdict_regex
from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig, SGLangJudge
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang

FACTS = ("JKLM is a parallelogram", "JK = 3f - 6")
RESPONSE = "<think>JKLM is a parallelogram, so JK = 3f - 6 = ML.</think><answer>\\boxed{9}</answer>"


def judge_for(url: str, **client: object) -> OpenAIChatJudge:
    constrained = bool(client.pop("constrained", False))
    config = ChatClientConfig(urls=(url,), model=JUDGE_MODEL, health_timeout_s=5.0, max_retries=0, **client)
    return OpenAIChatJudge(OpenAIChatJudgeConfig(client=config, constrained=constrained))


def test_each_dialect_spells_the_regex_in_its_own_field() -> None:
    assert regex_fields("sglang", "a|b") == {"regex": "a|b"}
    assert regex_fields("vllm", "a|b") == {"structured_outputs": {"regex": "a|b"}}
    with pytest.raises(DialectError):
        regex_fields("tgi", "a|b")


def test_model_cards_name_the_server() -> None:
    cards = {"data": [{"id": "other", "owned_by": "sglang"}, {"id": "m", "owned_by": "vllm"}]}
    assert dialect_of_models(cards, "m") == ("vllm", "vllm")
    assert dialect_of_models({"data": [{"id": "m", "owned_by": "openai"}]}, "m") == (None, "openai")
    assert dialect_of_models({"data": []}, "m") == (None, None)


def test_resolution_fails_closed() -> None:
    assert resolve_dialect("auto", {"a": "vllm", "b": "vllm"}) == "vllm"
    assert resolve_dialect("auto", {"a": "vllm", "b": None}) is None
    assert resolve_dialect("sglang", {"a": None}) == "sglang"
    with pytest.raises(DialectError, match="judge_server=sglang but a is vllm"):
        resolve_dialect("sglang", {"a": "vllm"})
    with pytest.raises(DialectError, match="different servers"):
        resolve_dialect("auto", {"a": "vllm", "b": "sglang"})


def test_vllm_usage_with_cached_tokens_is_read() -> None:
    body = {
        "choices": [{"message": {"content": "<info1>1</info1>"}, "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": 680,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 672},
        },
    }
    text, finish, usage = parse_chat_reply(json.dumps(body).encode())
    assert (text, finish) == ("<info1>1</info1>", "length")
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (
        680,
        40,
        672,
    )
    assert parse_usage({"usage": {"prompt_tokens": 5, "completion_tokens": 1}}).cached_tokens is None
    assert parse_usage({}) is None


def test_auto_detects_sglang_and_sends_its_regex_field() -> None:
    async def go(url: str) -> tuple[str | None, object]:
        judge = judge_for(url, constrained=True)
        await judge.start()
        try:
            return judge.dialect, await judge.judge(FACTS, RESPONSE)
        finally:
            await judge.close()

    with fake_sglang() as server:
        dialect, result = asyncio.run(go(server.url))
        body = server.received[-1]
    assert dialect == "sglang"
    assert body["regex"] == verdict_regex(2) and "structured_outputs" not in body
    assert result.ok and result.prompt_tokens > 0 and result.completion_tokens > 0


def test_a_vllm_server_gets_structured_outputs() -> None:
    async def go(url: str) -> None:
        judge = judge_for(url, constrained=True)
        await judge.start()
        try:
            assert judge.dialect == "vllm"
            await judge.judge(FACTS, RESPONSE)
        finally:
            await judge.close()

    with fake_sglang(owned_by="vllm") as server:
        asyncio.run(go(server.url))
        body = server.received[-1]
    assert body["structured_outputs"] == {"regex": verdict_regex(2)} and "regex" not in body


def test_unknown_server_with_constrained_output_stops_at_start() -> None:
    with fake_sglang(owned_by="acme-inference") as server:
        with pytest.raises(DialectError) as info:
            asyncio.run(judge_for(server.url, constrained=True).start())
        assert server.routes["/v1/chat/completions"] == 0
    message = str(info.value)
    assert "constrained output is on" in message and "judge_server" in message and server.url in message


def test_unknown_server_without_constraint_is_judged() -> None:
    async def go(url: str) -> object:
        judge = judge_for(url)
        await judge.start()
        try:
            assert judge.dialect is None
            return await judge.judge(FACTS, RESPONSE)
        finally:
            await judge.close()

    with fake_sglang(owned_by="acme-inference") as server:
        assert asyncio.run(go(server.url)).ok


def test_an_explicit_setting_the_server_contradicts_is_an_error() -> None:
    with fake_sglang() as server, pytest.raises(DialectError, match="judge_server=vllm"):
        asyncio.run(judge_for(server.url, server="vllm").start())


def test_truncated_reply_is_its_own_failure_and_not_reasked() -> None:
    async def go(url: str) -> tuple[object, dict[str, int]]:
        judge = judge_for(url)
        await judge.start()
        try:
            return await judge.judge(FACTS, RESPONSE), judge.metrics()
        finally:
            await judge.close()

    with fake_sglang(finish_reason="length") as server:
        result, metrics = asyncio.run(go(server.url))
        assert server.routes["/v1/chat/completions"] == 1
    assert result.failure == "truncated" and result.requests == 1 and result.prompt_tokens > 0
    assert metrics["failed.truncated"] == 1 and metrics.get("reasks", 0) == 0
    assert metrics["client.finish.length"] == 1


def test_judge_server_option_is_validated() -> None:
    kwargs = {"judge": "sglang", "judge_urls": "h:1", "judge_model": "m", "judge_server": "vLLM"}
    options = from_kwargs(kwargs)
    assert options.judge_server == "vllm" and from_kwargs({}).judge_server == "auto"
    with pytest.raises(RewardConfigError, match="judge_server"):
        from_kwargs({"judge": "sglang", "judge_server": "tgi"})
    with pytest.raises(RewardConfigError, match="judge_server"):
        from_kwargs({"judge": "lexical", "judge_server": "vllm"})
    assert SGLangJudge is OpenAIChatJudge
