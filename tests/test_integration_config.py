"""The manager's options: parsed from reward.reward_kwargs, composed through verl's own hydra config."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from perception_verl.config import PerceptionRewardConfig, RewardConfigError, from_kwargs
from perception_verl.integration.routing import check_routing
from perception_verl.rewards.total import RewardWeights
from perception_verl.scorer import judge_endpoint
from tests.support.verl_harness import compose_trainer_config, perception_reward_overrides

RECIPE_KWARGS = {
    "judge": "sglang",
    "judge_urls": "http://judge-a:30000,http://judge-b:30000",
    "judge_model": "Qwen/Qwen2.5-32B-Instruct-AWQ",
    "max_concurrency": 256,
    "timeout_s": 120,
    "max_retries": 4,
    "health_timeout_s": 600,
    "constrained": True,
    "failure_policy": "exclude",
    "annotations_key": "reward_model.annotations",
    "weights": {"accuracy": 0.9, "format": 0.1, "perception": 0.7, "repetition": 1.0, "repetition_n": 20},
}


def test_defaults_follow_the_paper() -> None:
    config = from_kwargs(None)
    assert config == PerceptionRewardConfig()
    assert config.weights == RewardWeights()
    assert (config.judge, config.failure_policy, config.annotations_key) == (
        None,
        "exclude",
        "reward_model.annotations",
    )


def test_recipe_overrides_compose_against_verl_and_parse() -> None:
    cfg = compose_trainer_config(perception_reward_overrides("/tmp/tokenizer", RECIPE_KWARGS))
    assert cfg.reward.reward_manager.source == "importlib"
    assert cfg.reward.reward_manager.module.path == "pkg://perception_verl.integration.manager"
    assert cfg.reward.reward_manager.name == "PerceptionRewardManager"
    options = from_kwargs(cfg.reward.reward_kwargs)
    assert options.judge == "sglang"
    assert options.judge_urls == ("http://judge-a:30000", "http://judge-b:30000")
    assert options.judge_model == "Qwen/Qwen2.5-32B-Instruct-AWQ"
    assert (options.max_concurrency, options.timeout_s, options.health_timeout_s) == (256, 120.0, 600.0)
    assert options.constrained is True
    assert options.weights == RewardWeights(perception=0.7, repetition_n=20)


def test_single_weight_override_composes() -> None:
    cfg = compose_trainer_config(["+reward.reward_kwargs.weights.perception=0.3"])
    assert from_kwargs(cfg.reward.reward_kwargs).weights == RewardWeights(perception=0.3)


def test_misspelt_option_from_hydra_is_named_with_a_suggestion() -> None:
    cfg = compose_trainer_config(["+reward.reward_kwargs.judge_url=http://x:1"])
    with pytest.raises(RewardConfigError, match=r"reward_kwargs\.judge_url; did you mean 'judge_urls'"):
        from_kwargs(cfg.reward.reward_kwargs)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"weights": {"perceptoin": 0.5}}, r"reward_kwargs\.weights\.perceptoin; did you mean 'perception'"),
        ({"weights": {"perception": -1}}, r"weights\.perception.*>= 0"),
        ({"weights": {"repetition_n": 2.5}}, r"weights\.repetition_n.*integer"),
        ({"weights": 0.7}, r"'weights' must be a mapping"),
        ({"judge": "vllm"}, r"'judge' must be one of lexical, sglang"),
        ({"failure_policy": "zero"}, r"'failure_policy' must be one of exclude, raise"),
        ({"max_concurrency": 0}, r"'max_concurrency' must be >= 1"),
        ({"timeout_s": 0}, r"'timeout_s' must be > 0"),
        ({"max_retries": "many"}, r"'max_retries' must be a number"),
        ({"constrained": "yes"}, r"'constrained' must be true or false"),
        ({"judge_urls": ["ftp://x"]}, r"'judge_urls' entry 'ftp://x'"),
        ({"annotations_key": "annotations"}, r"'annotations_key' must start with reward_model or extra_info"),
        ({"judge_model": ""}, r"'judge_model' must be a non-empty string"),
        ({"totally_new": 1}, r"unknown option reward\.reward_kwargs\.totally_new \(known: weights, judge"),
    ],
)
def test_bad_values_fail_naming_the_key(kwargs: dict, named: str) -> None:
    with pytest.raises(RewardConfigError, match=named):
        from_kwargs(kwargs)


def test_values_are_normalised() -> None:
    config = from_kwargs(
        OmegaConf.create(
            {
                "judge": "SGLang",
                "judge_urls": ["127.0.0.1:30000/", " http://h:1 "],
                "constrained": "true",
                "timeout_s": "30",
                "annotations_key": "extra_info.visual_key_info",
            }
        )
    )
    assert config.judge == "sglang"
    assert config.judge_urls == ("http://127.0.0.1:30000", "http://h:1")
    assert config.constrained is True and config.timeout_s == 30.0
    assert config.annotations_key == "extra_info.visual_key_info"


def test_judge_endpoint_prefers_urls_then_verl_router() -> None:
    external = from_kwargs({"judge": "sglang", "judge_urls": "http://j:1", "judge_model": "m"})
    assert judge_endpoint(external, "10.0.0.1:9000", "/models/judge") == (("http://j:1",), "m")
    managed = from_kwargs({"judge": "sglang"})
    assert judge_endpoint(managed, "10.0.0.1:9000", "/models/judge") == (
        ("http://10.0.0.1:9000",),
        "/models/judge",
    )
    with pytest.raises(RewardConfigError, match="judge_urls"):
        judge_endpoint(managed, None, None)
    with pytest.raises(RewardConfigError, match="judge_model"):
        judge_endpoint(from_kwargs({"judge": "sglang", "judge_urls": "http://j:1"}), None, None)


def test_verl_managed_judge_needs_routing_settings() -> None:
    options = from_kwargs({"judge": "sglang"})
    base = ["reward.reward_model.enable=True", "reward.reward_model.model_path=/models/judge"]
    with pytest.raises(RewardConfigError, match=r"custom_reward_function\.path"):
        check_routing(compose_trainer_config(base), options)
    routed = [
        *base,
        "reward.custom_reward_function.path=pkg://perception_verl.integration.manager",
        "reward.custom_reward_function.name=compute_score",
    ]
    with pytest.raises(RewardConfigError, match="enable_resource_pool=True"):
        check_routing(compose_trainer_config(routed), options)
    check_routing(compose_trainer_config([*routed, "reward.reward_model.enable_resource_pool=True"]), options)
    check_routing(compose_trainer_config([*routed, "trainer.use_v1=False"]), options)


def test_recipe_overrides_pass_verls_own_config_validation() -> None:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    trainer = [
        "algorithm.adv_estimator=grpo",
        "data.train_batch_size=8",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=1",
        "trainer.n_gpus_per_node=1",
    ]
    cfg = compose_trainer_config([*trainer, *perception_reward_overrides("/tmp/tokenizer", RECIPE_KWARGS)])
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    assert from_kwargs(cfg.reward.reward_kwargs).judge_urls == (
        "http://judge-a:30000",
        "http://judge-b:30000",
    )


@pytest.mark.parametrize("key", ["judge_urls", "judge_model", "api_key_env"])
def test_http_judge_options_without_judge_sglang_fail(key: str) -> None:
    value = "http://judge:30000" if key == "judge_urls" else "NAME"
    with pytest.raises(RewardConfigError, match=rf"'{key}' is set but judge=lexical ignores.*judge=sglang"):
        from_kwargs({"judge": "lexical", key: value})
    assert from_kwargs({"judge": "sglang", key: value}).judge == "sglang"


def test_judge_step_deadline_is_validated_and_needs_the_http_judge() -> None:
    from perception_verl.config import RewardConfigError, from_kwargs

    http = {"judge": "sglang", "judge_urls": "http://h:1", "judge_model": "m"}
    assert from_kwargs({**http, "judge_step_deadline_s": "90"}).judge_step_deadline_s == 90.0
    assert from_kwargs(http).judge_step_deadline_s == 600.0
    with pytest.raises(RewardConfigError, match="judge_step_deadline_s"):
        from_kwargs({**http, "judge_step_deadline_s": 0})
    with pytest.raises(RewardConfigError, match="judge_step_deadline_s"):
        from_kwargs({"judge": "lexical", "judge_step_deadline_s": 30})
