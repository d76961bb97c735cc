"""PerceptionRewardManager.run_single on real DataProto samples, without Ray (lexical and HTTP judges)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from perception_verl.client.errors import JudgeUnavailable
from perception_verl.data.annotations import AnnotationError
from perception_verl.integration.manager import PerceptionRewardManager
from perception_verl.integration.metrics import JUDGE_KEY
from perception_verl.judge.lexical import lexical_verdicts
from perception_verl.rewards.total import score_response
from perception_verl.scorer import EXTRA_KEYS, JudgeFailedError
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto, on_manager_loop, score_all

GOOD = (
    "<think>\nJKLM is a parallelogram, so JK = LM and 3f - 6 = 2f + 1.\n</think>\n"
    "<answer>\nSo f = 7 and \\boxed{7}.\n</answer>"
)
PARTIAL = "<think>\nOpposite sides are equal, so f = 7.\n</think>\n<answer>\n\\boxed{7}\n</answer>"
WRONG = "<think>\nJKLM is a parallelogram.\n</think>\n<answer>\n\\boxed{5}\n</answer>"
FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]

SAMPLES = [
    Sample("Find f. <image>", GOOD, "7", FACTS, uid="a"),
    Sample("Find f. <image>", PARTIAL, "7", FACTS, uid="a"),
    Sample("Find f. <image>", WRONG, "7", "<info1>JKLM is a parallelogram</info1><info2>JK = 3f - 6</info2>"),
    Sample("Find x. <image>", GOOD, "7", None, uid="b"),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def make_manager(tokenizer: Any, **kwargs: Any) -> PerceptionRewardManager:
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}, "trainer": {"use_v1": True}})
    return PerceptionRewardManager(config, tokenizer, compute_score=None)


def run_all(manager: PerceptionRewardManager, data: Any) -> list[dict]:
    return score_all(manager, data)


def expected(sample: Sample) -> Any:
    from perception_verl.data.annotations import parse_annotations

    facts = parse_annotations(sample.annotations)
    verdicts = lexical_verdicts(facts, sample.response) if facts else None
    return score_response(sample.response, sample.ground_truth, verdicts, num_annotations=len(facts))


def test_lexical_scores_match_the_reward_functions(tokenizer: Any) -> None:
    outputs = run_all(make_manager(tokenizer, judge="lexical"), build_dataproto(tokenizer, SAMPLES))
    for sample, out in zip(SAMPLES, outputs, strict=True):
        breakdown = expected(sample)
        info = dict(out["reward_extra_info"])
        assert info.pop(JUDGE_KEY) == "lexical"
        assert tuple(info) == EXTRA_KEYS
        assert all(isinstance(v, float) for v in info.values())
        assert out["reward_score"] == pytest.approx(breakdown.score)
        assert info["accuracy"] == breakdown.accuracy and info["num_annotations"] == breakdown.num_annotations
        assert info["judge_failed"] == 0.0
    assert outputs[0]["reward_extra_info"]["perception"] > outputs[1]["reward_extra_info"]["perception"]
    assert outputs[3]["reward_extra_info"]["perception_excluded"] == 1.0
    assert outputs[3]["reward_extra_info"]["num_annotations"] == 0.0


def test_annotations_read_from_extra_info_path(tokenizer: Any) -> None:
    data = build_dataproto(tokenizer, SAMPLES[:1], annotations_field="extra_info")
    default = run_all(make_manager(tokenizer, judge="lexical"), data)[0]["reward_extra_info"]
    assert default["num_annotations"] == 0.0 and default["perception_excluded"] == 1.0
    moved_manager = make_manager(tokenizer, judge="lexical", annotations_key="extra_info.annotations")
    moved = run_all(moved_manager, data)[0]
    assert moved["reward_extra_info"]["num_annotations"] == 2.0
    assert moved["reward_score"] == pytest.approx(expected(SAMPLES[0]).score)


def test_bad_rows_fail_with_the_row_named(tokenizer: Any) -> None:
    bad = build_dataproto(tokenizer, [Sample("p", GOOD, "7", [1, 2])])
    with pytest.raises(AnnotationError, match="index=0"):
        run_all(make_manager(tokenizer, judge="lexical"), bad)
    missing = build_dataproto(tokenizer, SAMPLES[:1])
    missing.non_tensor_batch["reward_model"][0] = {"style": "rule"}
    with pytest.raises(KeyError, match=r"reward_model\.ground_truth"):
        run_all(make_manager(tokenizer, judge="lexical"), missing)


def sglang_kwargs(url: str, **extra: Any) -> dict[str, Any]:
    return {"judge": "sglang", "judge_urls": url, "judge_model": JUDGE_MODEL, "max_retries": 0, **extra}


def test_http_judge_one_per_manager_health_checked_as_built_and_as_started(tokenizer: Any) -> None:
    data = build_dataproto(tokenizer, SAMPLES)
    with fake_sglang() as server:
        first = make_manager(tokenizer, **sglang_kwargs(server.url, constrained=True))
        second = make_manager(tokenizer, **sglang_kwargs(server.url, constrained=True))
        assert first.scorer is not second.scorer  # one scorer per manager, none shared by the process
        assert first.loop is second.loop  # verl's loop of this thread

        async def go() -> list[dict]:
            try:
                half = [first.run_single(data[i : i + 1]) for i in range(2)]
                rest = [second.run_single(data[i : i + 1]) for i in range(2, len(data))]
                return await asyncio.gather(*half, *rest)
            finally:
                await first.close()
                await second.close()

        outputs = on_manager_loop(first, go())
        # per manager: one check as it is built (in the reward worker, before any sample) and one as
        # its judge starts on the manager's loop
        assert server.routes["/health"] == 4
        assert server.routes["/v1/chat/completions"] == 3  # the row without annotations is not judged
        assert all("regex" in body for body in server.received)
    for sample, out in zip(SAMPLES, outputs, strict=True):
        assert out["reward_score"] == pytest.approx(expected(sample).score)
        assert out["reward_extra_info"]["judge_failed"] == 0.0


def test_manager_scores_only_on_the_loop_verl_gave_it(tokenizer: Any) -> None:
    from perception_verl.scorer import ScorerLoopError

    manager = make_manager(tokenizer, judge="lexical")
    data = build_dataproto(tokenizer, SAMPLES[:1])
    with pytest.raises(ScorerLoopError, match="another event loop"):
        asyncio.run(manager.run_single(data))
    assert score_all(manager, data)[0]["reward_score"] == pytest.approx(expected(SAMPLES[0]).score)


def test_judge_failure_excluded_by_default(tokenizer: Any) -> None:
    data = build_dataproto(tokenizer, SAMPLES[:1])
    with fake_sglang(fail_rate=1.0, fail_status=503) as server:
        manager = make_manager(tokenizer, **sglang_kwargs(server.url, judge_step_deadline_s=2.0))
        out = run_all(manager, data)[0]
        assert server.routes["/v1/chat/completions"] > 1, "the budget retried the failed call"
    info = out["reward_extra_info"]
    assert info["judge_failed"] == 1.0 and info["perception_excluded"] == 1.0 and info["perception"] == 0.0
    no_perception = score_response(GOOD, "7", None, num_annotations=2)
    assert out["reward_score"] == pytest.approx(no_perception.score)


def test_judge_failure_raises_under_raise_policy(tokenizer: Any) -> None:
    data = build_dataproto(tokenizer, SAMPLES[:1])
    with fake_sglang(fail_rate=1.0, fail_status=503) as server, pytest.raises(JudgeFailedError, match="503"):
        kwargs = sglang_kwargs(server.url, failure_policy="raise", judge_step_deadline_s=2.0)
        run_all(make_manager(tokenizer, **kwargs), data)


def test_unhealthy_judge_stops_the_first_sample(tokenizer: Any) -> None:
    data = build_dataproto(tokenizer, SAMPLES[:1])
    with fake_sglang(health_ok=False) as server, pytest.raises(JudgeUnavailable, match=str(server.port)):
        run_all(make_manager(tokenizer, **sglang_kwargs(server.url, health_timeout_s=1)), data)


def test_a_judge_down_when_the_worker_first_scores_fails_calls_not_the_step(tokenizer: Any) -> None:
    """The manager's start check passed; the judge dies before the first sample and comes back later."""
    data = build_dataproto(tokenizer, SAMPLES[:1])
    server = fake_sglang()
    server.start()
    again = fake_sglang(port=server.port)
    try:
        manager = make_manager(
            tokenizer, **sglang_kwargs(server.url, judge_step_deadline_s=2.0, health_timeout_s=1)
        )
        server.stop()

        async def go() -> list[dict]:
            try:
                down = await manager.run_single(data)
                again.start()
                back = await manager.run_single(data)
                return [down, back]
            finally:
                await manager.close()

        down, back = on_manager_loop(manager, go())
    finally:
        server.stop()
        again.stop()
    assert down["reward_extra_info"]["judge_failed"] == 1.0
    assert down["reward_extra_info"]["perception_excluded"] == 1.0
    assert back["reward_extra_info"]["judge_failed"] == 0.0
    assert back["reward_score"] == pytest.approx(expected(SAMPLES[0]).score)
    assert again.routes["/health"] >= 1 and again.routes["/v1/chat/completions"] == 1


def test_constrained_output_against_an_unknown_server_stops_the_manager_as_it_is_built(
    tokenizer: Any,
) -> None:
    from perception_verl.client.dialects import DialectError

    with fake_sglang(owned_by="someone") as server, pytest.raises(DialectError, match="judge_server"):
        make_manager(tokenizer, **sglang_kwargs(server.url, constrained=True))
    assert server.routes["/v1/chat/completions"] == 0


def test_judge_launched_by_verl_reached_through_its_router_address(tokenizer: Any, tmp_path: Path) -> None:
    """verl's RewardLoopWorker with reward_model.enable=True hands our manager its router address."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.reward import get_custom_reward_fn

    from perception_verl.integration import manager as manager_module
    from tests.support.verl_harness import compose_trainer_config, perception_reward_overrides

    judge_path = build_tiny_tokenizer(tmp_path / "judge")  # verl loads the judge's tokenizer from here
    cfg = compose_trainer_config(
        [
            # no judge named: verl's router address implies the HTTP judge
            *perception_reward_overrides(tokenizer.name_or_path, {}),
            "reward.reward_model.enable=True",
            "reward.reward_model.enable_resource_pool=True",
            f"reward.reward_model.model_path={judge_path}",
            "reward.custom_reward_function.path=pkg://perception_verl.integration.manager",
            "reward.custom_reward_function.name=compute_score",
        ]
    )
    assert get_custom_reward_fn(cfg).args[0] is manager_module.compute_score
    data = build_dataproto(tokenizer, SAMPLES)
    with fake_sglang(model=str(judge_path)) as server:
        worker = RewardLoopWorker(cfg, reward_router_address=f"127.0.0.1:{server.port}")
        assert isinstance(worker.reward_manager, PerceptionRewardManager)

        async def go() -> list[dict]:
            try:
                return await worker.compute_score_batch(data)
            finally:
                await worker.reward_manager.close()

        outputs = on_manager_loop(worker, go())
        assert worker.reward_manager.options.judge == "sglang"
        assert server.routes["/health"] == 2 and server.routes["/v1/chat/completions"] == 3
    for sample, out in zip(SAMPLES, outputs, strict=True):
        assert out["reward_score"] == pytest.approx(expected(sample).score)


def test_math_verify_bombs_cost_one_deadline_and_no_honest_accuracy(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 answers that hold the GIL in sympy's C code for 70-100 s, among 48 honest correct answers."""
    import time

    from perception_verl.scorer import accuracy as scorer_module
    from tests.support.bombs import BOMB_RESPONSE, unguarded_accuracy

    # Without the size guard, so only the process deadline can stop the bombs.
    monkeypatch.setattr(scorer_module, "accuracy_reward", unguarded_accuracy)
    timeout_s = 3.0
    samples = [
        Sample(f"Problem {i}. <image>", BOMB_RESPONSE if i % 4 == 0 else GOOD, "7", FACTS, uid=str(i // 8))
        for i in range(64)
    ]
    manager = make_manager(tokenizer, judge="lexical", accuracy_timeout_s=timeout_s)
    began = time.monotonic()
    outputs = run_all(manager, build_dataproto(tokenizer, samples))
    elapsed = time.monotonic() - began
    infos = [out["reward_extra_info"] for out in outputs]
    bombs = [info for i, info in enumerate(infos) if i % 4 == 0]
    honest = [info for i, info in enumerate(infos) if i % 4 != 0]
    assert len(bombs) == 16 and len(honest) == 48
    assert all(info["accuracy"] == 1.0 and info["accuracy_timed_out"] == 0.0 for info in honest)
    assert all(info["accuracy"] == 0.0 and info["accuracy_timed_out"] == 1.0 for info in bombs)
    assert all(info["perception"] == 1.0 for info in honest)
    # Start-up (the fork server imports sympy) plus about one deadline; a thread-based bound took 70 s+.
    assert elapsed < 2.5 * timeout_s + 10.0, f"the batch took {elapsed:.1f} s"


def test_symbolic_constant_bombs_are_refused_before_math_verify_runs(tokenizer: Any) -> None:
    from tests.support.bombs import BOMB_RESPONSE

    samples = [Sample("Problem. <image>", text, "7", FACTS) for text in (BOMB_RESPONSE, GOOD)]
    manager = make_manager(tokenizer, judge="lexical", accuracy_timeout_s=30.0)
    outputs = run_all(manager, build_dataproto(tokenizer, samples))
    bomb, honest = (out["reward_extra_info"] for out in outputs)
    assert bomb["accuracy"] == 0.0 and bomb["accuracy_timed_out"] == 0.0
    assert honest["accuracy"] == 1.0


def test_accuracy_timeout_must_be_positive(tokenizer: Any) -> None:
    from perception_verl.config import RewardConfigError

    with pytest.raises(RewardConfigError, match="accuracy_timeout_s"):
        make_manager(tokenizer, judge="lexical", accuracy_timeout_s=0)


def test_http_judge_admits_a_bounded_number_of_samples_at_once(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [
        Sample("Find f. <image>", GOOD.replace("7", str(i)), "7", FACTS, uid=str(i)) for i in range(24)
    ]
    data = build_dataproto(tokenizer, samples)
    in_progress = {"now": 0, "max": 0}
    inner = PerceptionRewardManager._run_single

    async def counted(self: PerceptionRewardManager, item: Any, started: float) -> dict:
        in_progress["now"] += 1
        in_progress["max"] = max(in_progress["max"], in_progress["now"])
        try:
            return await inner(self, item, started)
        finally:
            in_progress["now"] -= 1

    monkeypatch.setattr(PerceptionRewardManager, "_run_single", counted)
    with fake_sglang(latency_s=0.05) as server:
        outputs = run_all(make_manager(tokenizer, **sglang_kwargs(server.url, max_concurrency=3)), data)
        assert server.max_in_flight <= 3
    assert in_progress["max"] == 6  # 2 x max_concurrency, while all 24 were started at once
    assert [out["reward_extra_info"]["judge_failed"] for out in outputs] == [0.0] * 24
