"""Where a model server is and how hard to try: :class:`JudgeEndpoint`, the one home of these defaults.

verl's ``reward.reward_kwargs`` (:class:`perception_verl.config.PerceptionRewardConfig`), the shared
command-line flags (:mod:`perception_verl.judge_flags`) and the client's own config
(:class:`perception_verl.client.chat_config.ChatClientConfig`) all take their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JudgeEndpoint:
    """An OpenAI-compatible server (the judge, or the annotation pipeline's solver and extractor).

    ``urls`` are replicas of one model; ``api_key_env`` names the environment variable holding the key
    (the key itself is never an option); ``server`` is the dialect (``auto``: read at the health check);
    ``max_reply_bytes`` ``None`` sizes the reply bound from each call's ``max_tokens``.
    """

    urls: tuple[str, ...] = ()
    model: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 4
    health_timeout_s: float = 30.0
    server: str = "auto"
    max_reply_bytes: int | None = None


DEFAULTS = JudgeEndpoint()
"""The defaults every reader of these options shares."""
