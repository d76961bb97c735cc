"""Where the HTTP judge lives: the configured URLs, else the router of the judge verl launched."""

from __future__ import annotations

from perception_verl.client.chat import ChatClientConfig
from perception_verl.client.replicas import with_scheme
from perception_verl.config import PerceptionRewardConfig, RewardConfigError, endpoint_of


def judge_endpoint(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> tuple[tuple[str, ...], str]:
    """(urls, model) of the HTTP judge; :class:`RewardConfigError` naming the option when neither is set."""
    if options.judge_urls:
        urls = options.judge_urls
        model = options.judge_model
    elif reward_router_address:
        urls = (with_scheme(reward_router_address),)
        model = options.judge_model or verl_model_path
    else:
        raise RewardConfigError(
            "reward.reward_kwargs.judge=sglang needs reward.reward_kwargs.judge_urls (an external judge) "
            "or reward.reward_model.enable=True (a judge launched by verl)"
        )
    if not model:
        raise RewardConfigError("reward.reward_kwargs.judge_model is required with judge=sglang")
    return urls, model


def judge_client_config(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> ChatClientConfig:
    """The HTTP judge's :class:`ChatClientConfig` for these options."""
    urls, model = judge_endpoint(options, reward_router_address, verl_model_path)
    return ChatClientConfig.of(endpoint_of(options), urls=urls, model=model)
