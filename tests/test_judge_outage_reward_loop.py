"""A judge outage during a 1,024-response batch through verl's RewardLoopManager on Ray.

The judge (the loopback OpenAI-compatible server answering lexical verdicts) is healthy when the
reward-loop workers start, dies while the batch is being scored, and comes back on the same port
5 s later: with the step deadline longer than the outage, every response keeps the judge's verdict.
With a judge that never comes back, every failure is counted and the step still completes, also in
a worker whose first sample arrives after the judge died (its judge's start is retried by each call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from perception_verl.judge.lexical import lexical_verdicts
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import (
    Sample,
    build_dataproto,
    compose_trainer_config,
    local_ray,
    perception_reward_overrides,
    score_with_reward_loop,
)

pytestmark = pytest.mark.ray

FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]
BATCH = 1024


def response(i: int) -> str:
    said = "JKLM is a parallelogram, so JK = 3f - 6." if i % 3 else "Opposite sides are equal."
    said += f" Case {i}."
    return f"<think>\n{said}\n</think>\n<answer>\n\\boxed{{7}}\n</answer>"


SAMPLES = [Sample("Find f. <image>", response(i), "7", FACTS, uid=str(i // 8)) for i in range(BATCH)]


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    with local_ray(num_cpus=2):
        yield


WORKERS = 2


def kill_after(server: Any, chats: int, outage_s: float | None, revived: list[Any]) -> threading.Thread:
    """Stop ``server`` once both workers are started and it answered ``chats`` requests; revive it later.

    Each worker checks the judge's health twice (when the manager is built, and when its shared judge
    starts), so both workers are up after ``2 * WORKERS`` health requests.
    """

    def run() -> None:
        while server.routes["/health"] < 2 * WORKERS or server.routes["/v1/chat/completions"] < chats:
            time.sleep(0.01)
        port = server.port
        server.stop()
        if outage_s is None:
            return
        time.sleep(outage_s)
        again = fake_sglang(port=port)
        again.start()
        revived.append(again)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def options(url: str, deadline_s: float) -> dict[str, Any]:
    return {
        "judge": "sglang",
        "judge_urls": url,
        "judge_model": JUDGE_MODEL,
        "max_retries": 1,
        "timeout_s": 5,
        "judge_step_deadline_s": deadline_s,
    }


def score(tokenizer_path: Path, url: str, deadline_s: float) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    overrides = perception_reward_overrides(tokenizer_path, options(url, deadline_s), num_workers=WORKERS)
    cfg = compose_trainer_config(overrides)
    return score_with_reward_loop(cfg, build_dataproto(tokenizer, SAMPLES))


def test_an_outage_shorter_than_the_deadline_loses_no_verdict(
    ray_cluster: None, tokenizer_path: Path
) -> None:
    server = fake_sglang(latency_s=0.01)
    server.start()
    revived: list[Any] = []
    try:
        killer = kill_after(server, chats=200, outage_s=5.0, revived=revived)
        out = score(tokenizer_path, server.url, deadline_s=120.0)
        killer.join(timeout=60)
    finally:
        server.stop()
        for again in revived:
            again.stop()
    assert revived and revived[0].routes["/v1/chat/completions"] > 0, "the outage did not happen mid-batch"
    extras = out.non_tensor_batch
    truth = [sum(lexical_verdicts(FACTS, s.response)) / len(FACTS) for s in SAMPLES]
    assert extras["judge_failed"].tolist() == [0.0] * BATCH
    assert extras["perception_excluded"].tolist() == [0.0] * BATCH
    assert extras["perception"].tolist() == pytest.approx(truth)
    assert min(truth) < max(truth), "the batch holds both verdicts"


def test_a_judge_that_never_comes_back_fails_every_call_and_the_step_completes(
    ray_cluster: None, tokenizer_path: Path
) -> None:
    server = fake_sglang(latency_s=0.01)
    server.start()
    deadline_s = 8.0
    try:
        killer = kill_after(server, chats=100, outage_s=None, revived=[])
        began = time.monotonic()
        out = score(tokenizer_path, server.url, deadline_s=deadline_s)
        elapsed = time.monotonic() - began
        killer.join(timeout=60)
    finally:
        server.stop()
    extras = out.non_tensor_batch
    failed = extras["judge_failed"].tolist()
    judged = BATCH - int(sum(failed))
    assert 0 < judged < BATCH, "some responses were judged before the judge died, the rest failed"
    assert extras["perception_excluded"].tolist() == failed
    assert elapsed < 60 + deadline_s, f"the step took {elapsed:.0f} s"
