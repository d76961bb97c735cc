"""Where the chat server is and how hard to try (:class:`ChatClientConfig`), validated once."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from perception_verl.client.dialects import check_setting
from perception_verl.client.endpoint import DEFAULTS, JudgeEndpoint
from perception_verl.client.redact import has_userinfo, userinfo_error
from perception_verl.client.replicas import with_scheme

REPLY_BYTES_PER_TOKEN = 64
"""Reply bytes allowed per requested token: a token is at most a few characters, each at most 6 bytes
as a JSON ``\\uXXXX`` escape, so an honest reply stays far below this."""
REPLY_ENVELOPE_BYTES = 64 * 1024
"""Bytes allowed on top for the JSON envelope (ids, usage, logprobs set to null, ...)."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error answer's body is read (only its first 200 characters are shown)."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def reply_bound(max_tokens: int, max_reply_bytes: int | None = None) -> int:
    """Bytes of a chat reply the client reads: ``max_reply_bytes``, else sized from ``max_tokens``."""
    if max_reply_bytes:
        return max_reply_bytes
    return REPLY_ENVELOPE_BYTES + REPLY_BYTES_PER_TOKEN * max(int(max_tokens), 1)


def normalize_url(url: str, *, api_key_env: str | None = None) -> str:
    """``host:port``, ``http://host:port/`` or ``http://host:port/v1`` -> ``http://host:port``.

    ValueError for an empty URL, and for one with ``user:password@`` in it (the message shows it masked
    and names the options that carry a key instead, and both sources when ``api_key_env`` is set too).
    """
    text = url.strip()
    if not text:
        raise ValueError("judge URL is empty")
    if has_userinfo(text):
        raise ValueError(userinfo_error(text, api_key_env))
    text = with_scheme(text).rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


@dataclass(frozen=True)
class ChatClientConfig:
    """Where the chat server is and how hard to try. ``urls`` are replicas of one model.

    ``api_key_env`` names the environment variable holding the API key (the key itself is never an
    option). ``max_retries`` is for callers with no retry owner (the offline CLIs); the training judge
    sets it to 0 and retries by failure kind within the step deadline. ``max_reply_bytes`` bounds how
    much of a reply is read (``None``: sized from each call's ``max_tokens``, see :func:`reply_bound`).
    """

    urls: tuple[str, ...]
    model: str
    api_key_env: str | None = DEFAULTS.api_key_env
    max_concurrency: int = DEFAULTS.max_concurrency
    timeout_s: float = DEFAULTS.timeout_s
    max_retries: int = DEFAULTS.max_retries
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    health_timeout_s: float = DEFAULTS.health_timeout_s
    health_poll_s: float = 2.0
    replica_cooldown_s: float = 5.0
    server: str = DEFAULTS.server
    max_reply_bytes: int | None = DEFAULTS.max_reply_bytes

    @classmethod
    def of(cls, endpoint: JudgeEndpoint, **overrides: Any) -> ChatClientConfig:
        """The client config of ``endpoint`` (its URLs and model required here), ``overrides`` on top."""
        values = {field.name: getattr(endpoint, field.name) for field in fields(endpoint)}
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "server", check_setting(self.server))
        except ValueError as err:
            raise ValueError(f"ChatClientConfig.server: {err}") from None
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        if not urls:
            raise ValueError("ChatClientConfig.urls: at least one judge URL is required")
        if self.api_key_env and not ENV_NAME.fullmatch(self.api_key_env):
            raise ValueError(
                "ChatClientConfig.api_key_env (api_key_env / --api-key-env) takes the NAME of an environment "
                "variable holding the key, and this value is not one (not shown: it may be the key itself); "
                "export the key, e.g. JUDGE_API_KEY=..., and pass --api-key-env JUDGE_API_KEY"
            )
        object.__setattr__(self, "urls", tuple(normalize_url(u, api_key_env=self.api_key_env) for u in urls))
        if not self.model:
            raise ValueError("ChatClientConfig.model: the served model name is required")
        positive = {
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "health_timeout_s": self.health_timeout_s,
            "health_poll_s": self.health_poll_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"ChatClientConfig.{name} must be > 0, got {value!r}")
        non_negative = {
            "max_retries": self.max_retries,
            "backoff_base_s": self.backoff_base_s,
            "backoff_max_s": self.backoff_max_s,
            "replica_cooldown_s": self.replica_cooldown_s,
            "max_reply_bytes": self.max_reply_bytes or 0,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"ChatClientConfig.{name} must be >= 0, got {value!r}")
