"""The benchmarks at a tiny size: their JSON contract and invariants (never timings), and their pieces."""

from __future__ import annotations

import importlib
import json
import math
from types import ModuleType
from typing import Any

import pytest

from tests.support import layouts

TINY = ["--problems", "4", "--per-problem", "4", "--seed", "3"]


@pytest.fixture
def bench() -> Any:
    def load(name: str) -> ModuleType:
        return importlib.import_module(f"benchmarks.{name}")

    return load


def run_json(module: ModuleType, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    module.main([*argv, "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "a human table comes before the JSON line"
    return json.loads(lines[-1])


def test_workload_is_deterministic_with_duplicates_and_2_to_8_facts(bench: Any) -> None:
    common = bench("_common")
    first = common.build_workload(16, 8, seed=1)
    assert first == common.build_workload(16, 8, seed=1)
    assert first != common.build_workload(16, 8, seed=2)
    assert len(first.samples) == 128
    assert all(2 <= len(p.facts) <= 8 for p in first.problems)
    assert common.distinct_pairs(first.samples) < len(first.samples)  # some rollouts repeat
    for group in first.groups():
        assert len({s.uid for s in group}) == 1


def test_shared_prefix_share_counts_the_common_prefix_once_per_prompt(bench: Any) -> None:
    common = bench("_common")
    assert common.shared_prefix_share([["abcx", "abcy"]]) == pytest.approx(6 / 8)
    assert common.shared_prefix_share([["abcx", "abcy"], ["zz"]]) == pytest.approx(6 / 10)
    assert common.shared_prefix_share([]) == 0.0


@pytest.mark.parametrize("layout", ["ours", "response_first", "system_then_response"])
def test_every_layout_reads_back(layout: str) -> None:
    facts = ["JKLM is a parallelogram", "JK = 3f - 6"]
    response = "<think>\nFacts:\n1. JK = 3f - 6 so f = 7.\n</think>\n<answer>\\boxed{7}\n</answer>"
    messages = layouts.layout_messages(layout, facts, response)
    assert layouts.read_request(messages) == (facts, response)
    if layout == "response_first":
        assert messages[0]["content"].startswith("<response>\n<think>")


def test_prefix_cache_matches_whole_prefix_blocks_and_evicts_least_recent(bench: Any) -> None:
    model = bench("prefill_model")
    cache = model.PrefixCache(capacity_tokens=64, block_tokens=4)  # 16 blocks of 16 chars
    shared = "s" * 160
    assert cache.match_and_insert(shared + "a" * 32) == 0
    assert cache.match_and_insert(shared + "b" * 32) == 160
    assert cache.match_and_insert("x" + shared) == 0  # same text, different prefix: no reuse
    assert len(cache) == 16
    assert cache.match_and_insert(shared) < 160  # pushed out by the 11 blocks just inserted


def test_latency_model_charges_only_uncached_prefill(bench: Any) -> None:
    model_mod = bench("prefill_model")
    params = model_mod.JudgeCostParams(base_s=0.0, prefill_tok_per_s=1000.0, decode_tok_per_s=10.0)
    clock = iter([0.0, 100.0])
    model = model_mod.PrefillLatencyModel(
        params, render=lambda body: body["text"], verdict_chars=lambda body: 18, clock=lambda: next(clock)
    )
    first = model({"text": "p" * 4000})  # 1,000 tokens, nothing cached
    second = model({"text": "p" * 4000})  # all cached, idle server
    decode = model_mod.verdict_tokens(18) / 10.0
    assert first == pytest.approx(1.0 + decode)
    assert second == pytest.approx(decode)
    assert model.stats()["cached_share"] == pytest.approx(0.5)


def test_judge_throughput_json(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*TINY, "--latency-ms", "20", "--cap", "4", "--repeats", "1"]
    out = run_json(bench("judge_throughput"), argv, capsys)
    keys = ("efficiency", "speedup_vs_baseline", "requests_sent", "distinct_pairs", "responses_scored")
    assert set(keys) | {"shared_prefix_share"} <= set(out)
    assert out["responses_scored"] == 16
    assert out["requests_sent"] == out["requests_sent_min"] == out["distinct_pairs"]
    assert out["baseline_requests_sent"] == out["responses_scored"]
    assert out["scores_match"] is True
    assert 0.0 < out["shared_prefix_share"] < 1.0
    assert out["ideal_s"] == pytest.approx(math.ceil(out["distinct_pairs"] / 4) * 0.02)
    assert out["efficiency"] == pytest.approx(out["ideal_s"] / out["wall_s"])
    assert 1 <= out["server_max_in_flight"] <= 4


def test_reward_overhead_json(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mathruler", reason="verl's geo3k scorer needs mathruler (a dev dependency)")
    out = run_json(bench("reward_overhead"), [*TINY, "--repeats", "1"], capsys)
    assert out["responses_scored"] == out["naive_responses_scored"] == 16
    assert out["ratio_vs_naive"] == pytest.approx(out["ours_s"] / out["naive_s"])
    assert set(out["breakdown_ms"]) >= {"lexical_verdicts", "accuracy_math_verify", "geo3k_mathruler"}


def test_judge_prefill_json(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(bench("judge_prefill"), [*TINY, "--cap", "4", "--time-scale", "200"], capsys)
    common = bench("_common")
    workload = common.build_workload(4, 4, seed=3)
    assert out["requests"] == common.distinct_pairs(workload.samples)
    shares = [out[f"cached_share_{name}"] for name in ("ours", "system_then_response", "response_first")]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[2]
    assert out["prefill_busy_ours_s"] < out["prefill_busy_response_first_s"]
    assert out["speedup"] == pytest.approx(out["wall_response_first_s"] / out["wall_ours_s"])


def test_reward_overlap_json(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*TINY, "--cap", "4", "--time-scale", "200", "--rollout-s", "20"]
    out = run_json(bench("reward_overlap"), argv, capsys)
    common = bench("_common")
    distinct = common.distinct_pairs(common.build_workload(4, 4, seed=3).samples)
    assert out["requests_streamed"] == out["requests_batch"] == distinct
    assert out["tail_ours_s"] >= 0.0 and out["tail_batch_s"] > 0.0
    assert out["ratio"] == pytest.approx(out["tail_batch_s"] / out["tail_ours_s"])
    assert out["last_arrival_s"] == pytest.approx(20 / 200, abs=0.5)
