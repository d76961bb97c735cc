"""Step metrics for every reward component, from the ``reward_extra_info`` arrays of a training batch.

:func:`reward_metrics` is pure: it takes the per-sample arrays verl stacks from the reward manager's
``reward_extra_info`` (one array per key, as in ``batch.non_tensor_batch``) and returns flat metric
names in verl's style:

- ``reward/{score,accuracy,format,repetition,num_annotations}/{mean,std,min,max}``
- ``reward/perception/{mean,std,min,max}`` over samples whose perception term counted
  (absent when none did), ``reward/perception_excluded/share``
- ``reward/accuracy_timed_out/count``: answers whose math-verify check ran past its time bound
- ``reward/ground_truth_invalid/count``: samples whose ground truth had no text form (missing, empty,
  NaN, ``"None"``, a list): scored accuracy 0, never compared
- ``reward/judge_failed/{rate,count}`` over samples that needed the judge (had annotations)
- ``reward/judge_cached/share`` and ``reward/judge_latency_s/{mean,p50,p90,p99,max}`` over judge calls
  that were not cache hits
- ``reward/judge_truncated/count``: judge replies cut off at the judge's token budget
- judge token usage: ``reward/judge_{prompt,cached,completion}_tokens/sum`` and
  ``reward/judge_cached_tokens/share`` (cached / prompt tokens; the server's prefix-cache reuse)
- ``reward/perception_judge/<judge>``: the share of samples scored by each judge named in the
  ``perception_judge`` text key (``<judge>`` is the judge's backend and model, e.g. ``lexical`` or
  ``sglang_Qwen_Qwen2.5-32B-Instruct-AWQ``; its URLs are left out of the name)
- the same under ``reward/<data_source>/...`` when the batch holds several data sources.
Missing keys are skipped, so batches from other managers give what they can.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PREFIX = "reward"
JUDGE_KEY = "perception_judge"
"""The one text key the reward managers add to the numeric extras: which judge scored the sample's
perception (:func:`~perception_verl.config.judge_label`), so dumps and step metrics name it."""
JUDGE_METRIC_PREFIX = f"{PREFIX}/{JUDGE_KEY}/"
"""Prefix of the step metrics naming the judge: ``reward/perception_judge/<judge>``."""
SUMMARISED = ("score", "accuracy", "format", "repetition", "num_annotations")
LATENCY_PERCENTILES = (50, 90, 99)
USAGE_KEYS = ("judge_prompt_tokens", "judge_cached_tokens", "judge_completion_tokens")


def _floats(values: Any) -> np.ndarray:
    """Per-sample values as float64, ``None`` and non-numbers as NaN."""
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    out = np.full(len(items), np.nan, dtype=np.float64)
    for i, item in enumerate(items):
        if isinstance(item, (bool, int, float, np.number)):
            out[i] = float(item)
    return out


def _summary(name: str, values: np.ndarray, *, spread: bool = True) -> dict[str, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {}
    out = {f"{name}/mean": float(values.mean())}
    if spread:
        out.update(
            {
                f"{name}/std": float(values.std()),
                f"{name}/min": float(values.min()),
                f"{name}/max": float(values.max()),
            }
        )
    return out


def _group_metrics(columns: Mapping[str, np.ndarray], prefix: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key in SUMMARISED:
        if key in columns:
            metrics.update(_summary(f"{prefix}/{key}", columns[key]))
    excluded = columns.get("perception_excluded")
    if "perception" in columns:
        counted = columns["perception"]
        if excluded is not None:
            counted = counted[excluded == 0]
        metrics.update(_summary(f"{prefix}/perception", counted))
    if excluded is not None:
        known = excluded[~np.isnan(excluded)]
        if known.size:
            metrics[f"{prefix}/perception_excluded/share"] = float((known != 0).mean())
    if "accuracy_timed_out" in columns:
        timed_out = columns["accuracy_timed_out"]
        metrics[f"{prefix}/accuracy_timed_out/count"] = float((timed_out[~np.isnan(timed_out)] != 0).sum())
    if "ground_truth_invalid" in columns:
        invalid = columns["ground_truth_invalid"]
        metrics[f"{prefix}/ground_truth_invalid/count"] = float((invalid[~np.isnan(invalid)] != 0).sum())
    needed = None
    if "num_annotations" in columns:
        needed = columns["num_annotations"] > 0
    if "judge_failed" in columns:
        failed = columns["judge_failed"]
        mask = ~np.isnan(failed) if needed is None else needed & ~np.isnan(failed)
        if mask.any():
            metrics[f"{prefix}/judge_failed/rate"] = float((failed[mask] != 0).mean())
            metrics[f"{prefix}/judge_failed/count"] = float((failed[mask] != 0).sum())
    called = np.ones(len(next(iter(columns.values()))), dtype=bool) if needed is None else needed.copy()
    if "judge_cached" in columns:
        cached = columns["judge_cached"]
        if called.any():
            metrics[f"{prefix}/judge_cached/share"] = float((cached[called] != 0).mean())
        called &= cached == 0
    if "judge_truncated" in columns:
        truncated = columns["judge_truncated"]
        metrics[f"{prefix}/judge_truncated/count"] = float((truncated[~np.isnan(truncated)] != 0).sum())
    for key in USAGE_KEYS:
        if key in columns:
            metrics[f"{prefix}/{key}/sum"] = float(np.nansum(columns[key]))
    prompt = metrics.get(f"{prefix}/judge_prompt_tokens/sum")
    if prompt and f"{prefix}/judge_cached_tokens/sum" in metrics:
        metrics[f"{prefix}/judge_cached_tokens/share"] = metrics[f"{prefix}/judge_cached_tokens/sum"] / prompt
    if "judge_latency_s" in columns:
        latency = columns["judge_latency_s"][called]
        latency = latency[~np.isnan(latency)]
        if latency.size:
            metrics[f"{prefix}/judge_latency_s/mean"] = float(latency.mean())
            for q in LATENCY_PERCENTILES:
                metrics[f"{prefix}/judge_latency_s/p{q}"] = float(np.percentile(latency, q))
            metrics[f"{prefix}/judge_latency_s/max"] = float(latency.max())
    return metrics


def judge_metric_name(label: str) -> str:
    """A judge's name as a metric-name segment: ``backend:model`` with its URLs dropped and every
    character but letters, digits, ``.``, ``-`` and ``_`` turned into ``_`` (TensorBoard's tag set)."""
    return re.sub(r"[^\w.\-]+", "_", label.split("@", 1)[0]) or "unnamed"


def _judge_metrics(labels: Sequence[Any]) -> dict[str, float]:
    named = [str(label) for label in labels if label is not None]
    if not named:
        return {}
    counts = Counter(judge_metric_name(label) for label in named)
    return {f"{JUDGE_METRIC_PREFIX}{name}": count / len(labels) for name, count in sorted(counts.items())}


def reward_metrics(
    extra_infos: Mapping[str, np.ndarray | Sequence[Any]],
    data_sources: np.ndarray | Sequence[Any] | None = None,
) -> dict[str, float]:
    """Flat step metrics for a batch's reward components (see the module docstring for names)."""
    judges = extra_infos.get(JUDGE_KEY)
    judge_metrics = _judge_metrics(list(judges)) if judges is not None else {}
    columns = {key: _floats(values) for key, values in extra_infos.items() if key != JUDGE_KEY}
    columns = {key: values for key, values in columns.items() if values.size}
    if not columns:
        return judge_metrics
    sizes = {key: values.size for key, values in columns.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"reward extra info arrays differ in length: {sizes}")
    metrics = {**_group_metrics(columns, PREFIX), **judge_metrics}
    if data_sources is not None:
        listed = data_sources.tolist() if hasattr(data_sources, "tolist") else list(data_sources)
        sources = np.asarray([str(s) for s in listed], dtype=object)
        count = next(iter(sizes.values()))
        if sources.size != count:
            raise ValueError(f"data_sources has {sources.size} entries for {count} samples")
        names = sorted(set(sources.tolist()))
        if len(names) > 1:
            for name in names:
                mask = sources == name
                metrics.update(_group_metrics({k: v[mask] for k, v in columns.items()}, f"{PREFIX}/{name}"))
    return metrics
