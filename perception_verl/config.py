"""The perception reward manager's options, read once from verl's ``reward.reward_kwargs``.

Every option but the judge has a default; a recipe sets only what it changes, e.g.
``+reward.reward_kwargs.judge=sglang +reward.reward_kwargs.judge_urls=http://judge:30000``.
:func:`from_kwargs` is pure: it validates the whole mapping and raises :class:`RewardConfigError`
naming the offending key (with close matches for a misspelt one) before any sample is scored.

There is no default judge. :func:`resolve_judge` names the backend a run uses: the one set with
``judge``; else the HTTP judge when ``judge_urls`` is given or verl launched a judge (it passes a
router address); else, with a perception weight of 0, no judge at all (``"none"``); otherwise it
stops the run naming the option. The offline lexical judge is used only when named.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from perception_verl.client.dialects import SERVER_SETTINGS
from perception_verl.client.endpoint import DEFAULTS, JudgeEndpoint
from perception_verl.client.redact import has_userinfo, safe_url, userinfo_error
from perception_verl.client.replicas import with_scheme
from perception_verl.errors import PerceptionVerlError
from perception_verl.rewards.total import RewardWeights

JUDGE_BACKENDS = ("lexical", "sglang", "none")
FAILURE_POLICIES = ("exclude", "raise")
DEFAULT_ANNOTATIONS_KEY = "reward_model.annotations"
ANNOTATION_ROOTS = ("reward_model", "extra_info")

# Options that only an HTTP judge reads: setting one with judge=lexical is a mistake, not a no-op.
_SGLANG_ONLY = (
    "judge_urls", "judge_model", "api_key_env", "judge_step_deadline_s", "judge_server", "max_reply_bytes",
)  # fmt: skip
_WEIGHT_KEYS = ("accuracy", "format", "perception", "repetition", "repetition_n", "repetition_max_penalty")


class RewardConfigError(PerceptionVerlError, ValueError):
    """A ``reward.reward_kwargs`` option that is unknown or has a bad value."""


@dataclass(frozen=True)
class PerceptionRewardConfig:
    """Validated options of :class:`~perception_verl.integration.manager.PerceptionRewardManager`.

    ``judge`` ``None`` means not named (see :func:`resolve_judge`); ``"none"`` judges nothing
    (perception left out of every score, only with a perception weight of 0).
    ``judge_urls`` empty with ``judge="sglang"`` means "use the judge verl launched"
    (``reward.reward_model.enable=True``; verl passes its router address to the manager).
    ``judge_model`` ``None`` then means verl's ``reward.reward_model.model_path``.
    ``judge_server`` (``auto``, ``sglang``, ``vllm``) is the dialect the judge server speaks, which
    decides the request field that carries the ``constrained`` regex; ``auto`` reads it from the
    server at the health check.
    """

    weights: RewardWeights = field(default_factory=RewardWeights)
    """The reward weights, set one by one as ``weights.<name>`` (see :class:`RewardWeights`)."""
    judge: str | None = None
    """The perception judge: ``sglang`` (the LLM judge over HTTP: any OpenAI-compatible server, SGLang or
    vLLM), ``lexical`` (offline word overlap, no LLM; only when named) or ``none`` (no perception; only with
    ``weights.perception=0``). No default: implied ``sglang`` when ``judge_urls`` is set or verl launched
    the judge, ``none`` when ``weights.perception=0``; otherwise the run stops at start naming this option.
    """
    judge_urls: tuple[str, ...] = ()
    """Judge base URL(s), a list or a comma-separated string; several are replicas. Empty with
    ``judge=sglang``: the judge verl launched (``reward.reward_model.enable=True``).
    """
    judge_model: str | None = None
    """Served model name, checked against ``/v1/models`` at start; with a verl-launched judge it defaults to
    ``reward.reward_model.model_path``.
    """
    api_key_env: str | None = DEFAULTS.api_key_env
    """Name of the environment variable holding the judge's API key (sent as a Bearer token, never
    logged). Set the variable where Ray starts, not in Ray's ``runtime_env``.
    """
    max_concurrency: int = DEFAULTS.max_concurrency
    """Judge requests in flight per reward worker (total: ``reward.num_workers`` x this)."""
    timeout_s: float = DEFAULTS.timeout_s
    """Timeout of one judge request, in seconds."""
    max_retries: int = DEFAULTS.max_retries
    """Retries of a judge request on timeouts, connection resets, 429 and 5xx (exponential back-off with full
    jitter, ``Retry-After`` respected, capped) in the offline tools. Unused in training: there the step
    deadline (``judge_step_deadline_s``) owns every retry and the client tries each request once.
    """
    health_timeout_s: float = DEFAULTS.health_timeout_s
    """Bound on the start-up health check in seconds, including the wait for a judge still loading (port not
    open, ``/health`` 5xx), with a progress line.
    """
    max_new_tokens: int = 512
    """The judge's generation limit; a verdict cut off there is the failure kind ``truncated``."""
    constrained: bool = False
    """Regex-constrained decoding of the verdict format, in the request field of the server's dialect (see
    ``judge_server``).
    """
    judge_server: str = DEFAULTS.server
    """The judge server's dialect: ``sglang``, ``vllm``, or ``auto`` (read from ``owned_by`` in ``/v1/models``
    at the health check, and logged). With ``constrained=true`` an unknown server stops the run at start.
    """
    failure_policy: str = "exclude"
    """What a failed judge call does: ``exclude`` leaves the sample's perception term out and counts it (never
    a 0); ``raise`` fails the step.
    """
    annotations_key: str = DEFAULT_ANNOTATIONS_KEY
    """Where a row's annotations are: a dotted path under ``reward_model.`` or ``extra_info.``."""
    max_response_chars: int = 6000
    """Responses longer than this are cut (head and tail kept around an omission marker) before they are
    judged.
    """
    accuracy_timeout_s: float = 10.0
    """Bound on one math-verify check in seconds, counted from its start in a worker process; past it the
    process is killed (C code too), the answer scores 0 and is counted
    (``reward/accuracy_timed_out/count``), the step goes on.
    """
    rollout_mismatch_max: float | None = 0.1
    """Bound on how far the rollout engine's token distribution is from the actor's at the first training
    step (verl's ``rollout_corr/k3_kl``, else ``training/rollout_probs_diff_mean``), checked by
    ``perception_verl.main_ppo``: above it the run stops, naming likely causes (image-blind rollouts among
    them); on later steps a warning. ``null`` disables the check.
    """
    judge_step_deadline_s: float = 600.0
    """Judge budget of one sample in seconds, from its entry into ``run_single``: failed calls of a retryable
    kind (timeout, connection, 5xx, 429) are retried until then, so a shorter outage loses no verdict; a
    final kind (other 4xx, ``context_length``, auth, ``redirect``, ``oversize``) ends the call at once;
    past it ``failure_policy`` applies. ``judge=sglang`` only.
    """
    max_reply_bytes: int | None = DEFAULTS.max_reply_bytes
    """Bound on the bytes of one judge reply; a larger one is not read further and is the failure kind
    ``oversize``. Default: sized from ``max_new_tokens`` (64 KiB + 64 bytes a token). ``judge=sglang`` only.
    """


_ENDPOINT_FIELDS = {
    "judge_urls": "urls", "judge_model": "model", "api_key_env": "api_key_env",
    "max_concurrency": "max_concurrency", "timeout_s": "timeout_s", "max_retries": "max_retries",
    "health_timeout_s": "health_timeout_s",    "judge_server": "server", "max_reply_bytes": "max_reply_bytes",
}  # fmt: skip
"""Each option of the HTTP judge's endpoint, and its :class:`JudgeEndpoint` field."""


def endpoint_of(options: PerceptionRewardConfig) -> JudgeEndpoint:
    """The HTTP judge's :class:`JudgeEndpoint` in ``options`` (URLs empty: the judge verl launches)."""
    return JudgeEndpoint(**{field: getattr(options, key) for key, field in _ENDPOINT_FIELDS.items()})


def with_endpoint(endpoint: JudgeEndpoint, **options: Any) -> PerceptionRewardConfig:
    """A :class:`PerceptionRewardConfig` judging at ``endpoint``, with the other ``options`` given."""
    return PerceptionRewardConfig(
        **{key: getattr(endpoint, field) for key, field in _ENDPOINT_FIELDS.items()}, **options
    )


_KEYS = (
    "weights",
    "judge",
    "judge_urls",
    "judge_model",
    "api_key_env",
    "max_concurrency",
    "timeout_s",
    "max_retries",
    "health_timeout_s",
    "max_new_tokens",
    "constrained",
    "judge_server",
    "failure_policy",
    "annotations_key",
    "max_response_chars",
    "accuracy_timeout_s",
    "judge_step_deadline_s",
    "rollout_mismatch_max",
    "max_reply_bytes",
)


def _unknown(key: str, known: tuple[str, ...], where: str) -> RewardConfigError:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return RewardConfigError(f"unknown option {where}{key}{hint} (known: {', '.join(known)})")


def _plain(value: Any) -> Any:
    """Turn an OmegaConf node (DictConfig/ListConfig) into plain Python containers."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf ships with verl
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _number(key: str, value: Any, *, integer: bool, minimum: float, strict: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                raise RewardConfigError(f"option {key!r} must be a number, got {value!r}") from None
        else:
            raise RewardConfigError(f"option {key!r} must be a number, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise RewardConfigError(f"option {key!r} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise RewardConfigError(f"option {key!r} must be {relation} {minimum}, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise RewardConfigError(f"option {key!r} must be one of {', '.join(choices)}; got {value!r}")
    return value.strip().lower()


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RewardConfigError(f"option {key!r} must be true or false, got {value!r}")


def _optional_text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RewardConfigError(f"option {key!r} must be a non-empty string or null, got {value!r}")
    return value.strip()


def _urls(value: Any, key_env: Any = None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise RewardConfigError(
            f"option 'judge_urls' must be a list or a comma-separated string, got {value!r}"
        )
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise RewardConfigError(f"option 'judge_urls' holds a non-string entry {item!r}")
        url = item.strip().rstrip("/")
        if not url:
            continue
        if has_userinfo(url):
            key_env = key_env if isinstance(key_env, str) and key_env.strip() else None
            raise RewardConfigError(f"option 'judge_urls': {userinfo_error(url, key_env)}")
        url = with_scheme(url)
        if not url.startswith(("http://", "https://")):
            raise RewardConfigError(f"option 'judge_urls' entry {safe_url(item)!r} is not an http(s) URL")
        urls.append(url)
    return tuple(urls)


def _weights(value: Any) -> RewardWeights:
    if value is None:
        return RewardWeights()
    if not isinstance(value, Mapping):
        raise RewardConfigError(
            f"option 'weights' must be a mapping of {', '.join(_WEIGHT_KEYS)}; got {value!r}"
        )
    parsed: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in _WEIGHT_KEYS:
            raise _unknown(str(key), _WEIGHT_KEYS, "reward.reward_kwargs.weights.")
        if key == "repetition_n":
            parsed[key] = _number(f"weights.{key}", raw, integer=True, minimum=1)
        else:
            parsed[key] = _number(f"weights.{key}", raw, integer=False, minimum=0.0)
    try:
        return RewardWeights(**parsed)
    except ValueError as err:
        raise RewardConfigError(f"option 'weights': {err}") from None


def _annotations_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RewardConfigError(f"option 'annotations_key' must be a dotted path, got {value!r}")
    path = value.strip()
    parts = path.split(".")
    if len(parts) < 2 or parts[0] not in ANNOTATION_ROOTS or not all(parts):
        raise RewardConfigError(
            f"option 'annotations_key' must start with {' or '.join(ANNOTATION_ROOTS)} and name a field, "
            f"e.g. {DEFAULT_ANNOTATIONS_KEY!r}; got {value!r}"
        )
    return path


def from_kwargs(kwargs: Mapping[str, Any] | None) -> PerceptionRewardConfig:
    """Validate ``reward.reward_kwargs`` (a dict or DictConfig) into a :class:`PerceptionRewardConfig`."""
    raw = _plain(kwargs) if kwargs is not None else {}
    if not isinstance(raw, Mapping):
        raise RewardConfigError(f"reward.reward_kwargs must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in _KEYS:
            raise _unknown(str(key), _KEYS, "reward.reward_kwargs.")
    values: dict[str, Any] = {}
    if "weights" in raw:
        values["weights"] = _weights(raw["weights"])
    if "judge" in raw:
        values["judge"] = _choice("judge", raw["judge"], JUDGE_BACKENDS)
    if "judge_urls" in raw:
        values["judge_urls"] = _urls(raw["judge_urls"], raw.get("api_key_env"))
    for key in ("judge_model", "api_key_env"):
        if key in raw:
            values[key] = _optional_text(key, raw[key])
    for key in ("max_concurrency", "max_new_tokens", "max_response_chars", "max_reply_bytes"):
        if key in raw:
            values[key] = _number(key, raw[key], integer=True, minimum=1)
    if "max_retries" in raw:
        values["max_retries"] = _number("max_retries", raw["max_retries"], integer=True, minimum=0)
    for key in ("timeout_s", "health_timeout_s", "accuracy_timeout_s", "judge_step_deadline_s"):
        if key in raw:
            values[key] = _number(key, raw[key], integer=False, minimum=0.0, strict=True)
    if raw.get("rollout_mismatch_max") is not None:
        values["rollout_mismatch_max"] = _number(
            "rollout_mismatch_max", raw["rollout_mismatch_max"], integer=False, minimum=0.0, strict=True
        )
    elif "rollout_mismatch_max" in raw:
        values["rollout_mismatch_max"] = None
    if "constrained" in raw:
        values["constrained"] = _boolean("constrained", raw["constrained"])
    if "judge_server" in raw:
        values["judge_server"] = _choice("judge_server", raw["judge_server"], SERVER_SETTINGS)
    if "failure_policy" in raw:
        values["failure_policy"] = _choice("failure_policy", raw["failure_policy"], FAILURE_POLICIES)
    if "annotations_key" in raw:
        values["annotations_key"] = _annotations_key(raw["annotations_key"])
    judge = values.get("judge")
    if judge in ("lexical", "none"):
        stray = [key for key in _SGLANG_ONLY if values.get(key)]
        if stray:
            raise RewardConfigError(
                f"option {stray[0]!r} is set but judge={judge} ignores it; "
                "set reward.reward_kwargs.judge=sglang to use the LLM judge"
            )
    if judge is None and values.get("judge_urls"):
        values["judge"] = "sglang"
    options = PerceptionRewardConfig(**values)
    if options.judge == "none" and options.weights.perception > 0:
        raise RewardConfigError(
            f"reward.reward_kwargs.judge=none judges nothing, but weights.perception="
            f"{options.weights.perception:g}; name a judge (judge=sglang with judge_urls) or set "
            "reward.reward_kwargs.weights.perception=0"
        )
    return options


NO_JUDGE_HELP = (
    "set reward.reward_kwargs.judge_urls=http://HOST:PORT (the HTTP judge you serve), or "
    "reward.reward_model.enable=True (a judge verl launches), or reward.reward_kwargs.judge=lexical "
    "(the offline word-overlap judge, for plumbing checks only), or "
    "reward.reward_kwargs.weights.perception=0 (no perception reward)"
)


def resolve_judge(options: PerceptionRewardConfig, *, verl_judge: bool) -> PerceptionRewardConfig:
    """``options`` with the judge backend named; :class:`RewardConfigError` when none is implied.

    ``verl_judge`` is True when verl launched a judge (it passes ``reward_router_address``; in a dry
    run: ``reward.reward_model.enable=True``), which implies the HTTP judge.
    """
    if verl_judge and options.judge in ("lexical", "none"):
        raise RewardConfigError(
            f"verl launches a judge (reward.reward_model.enable=True) but reward.reward_kwargs.judge="
            f"{options.judge} never calls it; set reward.reward_kwargs.judge=sglang or "
            "reward.reward_model.enable=False"
        )
    if options.judge is not None:
        return options
    if verl_judge:
        return replace(options, judge="sglang")
    if options.weights.perception == 0:
        return replace(options, judge="none")
    raise RewardConfigError(
        f"no perception judge named: weights.perception={options.weights.perception:g} needs "
        f"reward.reward_kwargs.judge; {NO_JUDGE_HELP}"
    )


def judge_label(options: PerceptionRewardConfig, urls: tuple[str, ...] = (), model: str | None = None) -> str:
    """How summaries, label files and log lines name the judge, e.g. ``sglang:Qwen/X@http://h:30000``."""
    if options.judge != "sglang":
        return str(options.judge)
    model = model or options.judge_model or "?"
    where = ",".join(safe_url(url) for url in urls or options.judge_urls) or "verl-launched"
    return f"sglang:{model}@{where}"
