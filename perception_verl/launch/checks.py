"""The checks a recipe's dry run makes before a GPU is touched.

Each check returns a :class:`Check` (what was looked at, whether it is fine, and one line saying
why) instead of raising, so the dry run can report every problem at once. The judge's health check
is the only one doing network I/O (:func:`check_judge`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from perception_verl.client.chat_config import ChatClientConfig
from perception_verl.client.health import check_health

MANAGER_MODULE = "pkg://perception_verl.integration.manager"
MANAGER_NAME = "PerceptionRewardManager"


@dataclass(frozen=True)
class Check:
    """One finding of the dry run: ``ok`` False means the run must not start."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DataReport:
    """What a data file holds, as far as the reward needs to know."""

    path: str
    rows: int
    with_ground_truth: int
    with_annotations: int
    annotations: int

    @property
    def mean_annotations(self) -> float:
        return self.annotations / self.with_annotations if self.with_annotations else 0.0


def as_paths(value: Any) -> list[str]:
    """``data.train_files`` as a list: verl accepts one path or a list of paths."""
    if value is None:
        return []
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _lookup(row: Any, parts: Sequence[str]) -> Any:
    node = row
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def read_data_report(path: str, annotations_key: str) -> DataReport:
    """Count rows, ground truths and annotations of a verl parquet (reads only the needed column).

    ``annotations_key`` is the manager's dotted path, e.g. ``reward_model.annotations``.
    Raises ``FileNotFoundError``, ``ValueError`` (not parquet, missing column) or
    :class:`~perception_verl.data.annotations.AnnotationError` (annotations that are not text).
    """
    import pyarrow.parquet as pq

    from perception_verl.data.annotations import parse_annotations

    file = Path(os.path.expanduser(path))
    if not file.is_file():
        raise FileNotFoundError(f"data file {path!r} does not exist")
    try:
        parquet = pq.ParquetFile(file)
    except Exception as error:
        raise ValueError(f"data file {path!r} is not a readable parquet file ({error})") from error
    root, *rest = annotations_key.split(".")
    columns = set(parquet.schema_arrow.names)
    needed = {root, "reward_model"}
    missing = sorted(needed - columns)
    if missing:
        raise ValueError(
            f"data file {path!r} has no column {', '.join(repr(m) for m in missing)} "
            f"(columns: {', '.join(sorted(columns))})"
        )
    table = parquet.read(columns=sorted(needed))
    reward_rows = table.column("reward_model").to_pylist()
    root_rows = table.column(root).to_pylist()
    with_truth = with_annotations = total = 0
    for index, (reward_model, root_value) in enumerate(zip(reward_rows, root_rows, strict=True)):
        if isinstance(reward_model, dict) and reward_model.get("ground_truth") not in (None, ""):
            with_truth += 1
        facts = parse_annotations(_lookup({root: root_value}, [root, *rest]), row=f"{path}:{index}")
        if facts:
            with_annotations += 1
            total += len(facts)
    return DataReport(str(path), table.num_rows, with_truth, with_annotations, total)


def check_data(
    role: str, path: str, annotations_key: str, *, need_annotations: bool
) -> tuple[Check, DataReport | None]:
    """A data file exists, is a parquet with ground truths and (where the reward needs them) annotations.

    Validation files need no annotations: perception is then simply not part of validation.
    """
    name = f"data ({role})"
    try:
        report = read_data_report(path, annotations_key)
    except (OSError, ValueError) as error:
        return Check(name, False, str(error)), None
    return _data_check(name, role, report, annotations_key, need_annotations=need_annotations), report


def _data_check(
    name: str, role: str, report: DataReport, annotations_key: str, *, need_annotations: bool
) -> Check:
    counts = (
        f"{report.path}: {report.rows} rows, {report.with_ground_truth} with a ground truth, "
        f"{report.with_annotations} with annotations ({report.mean_annotations:.1f} per annotated row)"
    )
    if report.rows == 0:
        return Check(name, False, f"{counts}; the file is empty")
    if report.with_ground_truth < report.rows:
        return Check(name, False, f"{counts}; rows without reward_model.ground_truth cannot be scored")
    if report.with_annotations == 0:
        if need_annotations and role == "validation":
            return Check(
                name,
                True,
                f"{counts}; no annotations, so perception is not part of validation "
                "(accuracy, format and repetition are)",
            )
        if need_annotations:
            return Check(
                name,
                False,
                f"{counts}; no row has annotations under {annotations_key!r}, so the perception reward "
                "would be 0 everywhere (build the data with data_prep/build_geometry3k.py, or set "
                "reward.reward_kwargs.annotations_key)",
            )
        return Check(name, True, f"{counts} (perception weight is 0, annotations not needed)")
    return Check(name, True, counts)


def kept_after_overlong_filter(config: DictConfig, paths: Sequence[str]) -> int | None:
    """Training rows verl's ``RLHFDataset`` keeps after ``data.filter_overlong_prompts``.

    Computed with verl's own dataset class and the model's tokenizer/processor, and only when the
    model is a local folder and the filter is on; ``None`` otherwise (the caller then counts all rows).
    """
    model = Path(os.path.expanduser(str(config.actor_rollout_ref.model.path)))
    if not config.data.get("filter_overlong_prompts", False) or not (model / "config.json").is_file():
        return None
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = hf_tokenizer(str(model), trust_remote_code=False)
    processor = hf_processor(str(model), trust_remote_code=False, use_fast=True)
    dataset = RLHFDataset(
        data_files=[os.path.expanduser(p) for p in paths],
        tokenizer=tokenizer,
        config=config.data,
        processor=processor,
    )
    return len(dataset)


def check_steps(config: DictConfig, rows: int, kept: int | None) -> Check:
    """At least one training step per epoch: verl drops the last partial batch of every epoch."""
    batch = int(config.data.get("gen_batch_size") or config.data.train_batch_size)
    usable = rows if kept is None else kept
    filtered = (
        "overlong filter not computed (model is not a local folder or the filter is off)"
        if kept is None
        else f"{kept} of {rows} rows kept by the overlong-prompt filter"
    )
    steps = usable // batch
    detail = f"{steps} steps per epoch ({usable} rows // data.train_batch_size={batch}; {filtered})"
    if steps < 1:
        return Check(
            "steps per epoch",
            False,
            f"{detail}: verl drops the last partial batch, so no step would run; use more training rows "
            "or lower data.train_batch_size (and actor_rollout_ref.actor.ppo_mini_batch_size)",
        )
    return Check("steps per epoch", True, detail)


def check_manager(config: DictConfig) -> Check:
    """verl will load our reward manager (importlib path resolves, class exists)."""
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    manager = config.reward.reward_manager
    where = f"source={manager.source} module.path={manager.module.path} name={manager.name}"
    try:
        cls = resolve_reward_manager_cls(config)
    except Exception as error:
        return Check("reward manager", False, f"verl cannot load the reward manager ({where}): {error}")
    return Check("reward manager", True, f"{cls.__module__}.{cls.__qualname__}")


def check_plugin(config: DictConfig) -> Check:
    """Whether verl sees our ``verl.plugins`` entry point and has ``perception`` in its registry.

    Required when the config selects ``source=register name=perception``; otherwise a report, which
    still fails when the installed plugin is broken (verl itself would only log that at DEBUG).
    """
    import verl  # noqa: F401  (loads the verl.plugins entry points in this process)

    from perception_verl.plugin import ENTRY_POINT_GROUP, ENTRY_POINT_NAME, REGISTERED_NAME, plugin_status

    manager = config.reward.reward_manager
    needed = manager.source == "register" and manager.name == REGISTERED_NAME
    status = plugin_status()
    if status.entry_point is None:
        detail = (
            f"no {ENTRY_POINT_GROUP!r} entry point named {ENTRY_POINT_NAME!r} is installed "
            "(pip install the perception-verl package into this environment)"
        )
        return Check("verl plugin", not needed, detail if needed else f"{detail}; not needed for this config")
    if not status.enabled_by_policy:
        detail = (
            f"VERL_USE_EXTERNAL_PLUGINS={status.policy} keeps verl from loading it "
            f"(unset it, or list {ENTRY_POINT_NAME!r})"
        )
        return Check("verl plugin", not needed, detail if needed else f"{detail}; not needed for this config")
    if not status.registered:
        why = status.error or "nothing registered it"
        detail = f"{status.entry_point} did not register {REGISTERED_NAME!r}: {why}"
        return Check("verl plugin", False, detail)
    detail = f"{status.entry_point} registered {REGISTERED_NAME!r} in verl's registry"
    return Check("verl plugin", True, detail)


def is_perception_manager(config: DictConfig) -> bool:
    manager = config.reward.reward_manager
    if manager.source == "importlib":
        return manager.module.path == MANAGER_MODULE and manager.name == MANAGER_NAME
    return manager.name == "perception"


def check_verl(config: DictConfig) -> Check:
    """verl's own start-up validation (batch sizes against GPUs, micro-batch settings, ...)."""
    import contextlib
    import io

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            validate_config(
                config=config,
                use_reference_policy=need_reference_policy(config),
                use_critic=need_critic(config),
            )
    except Exception as error:
        return Check("verl config", False, f"{type(error).__name__}: {error}")
    return Check("verl config", True, "verl's validate_config passed")


def check_model_path(path: str) -> Check:
    """A local model folder exists; a hub id is left to verl (it downloads on the GPU machine)."""
    expanded = Path(os.path.expanduser(path))
    if expanded.exists():
        if not (expanded / "config.json").is_file():
            return Check("model", False, f"model folder {path!r} has no config.json")
        return Check("model", True, f"local folder {path}")
    if path.startswith(("/", ".", "~")):
        return Check("model", False, f"model folder {path!r} does not exist")
    return Check("model", True, f"{path} (not a local folder: verl will fetch it from the hub)")


def check_judge(config: DictConfig, options: Any) -> Check:
    """The judge the reward manager will use answers its health check (or verl will launch it)."""
    from perception_verl.client.errors import JudgeUnavailable
    from perception_verl.config import RewardConfigError
    from perception_verl.integration.routing import check_routing
    from perception_verl.scorer import judge_endpoint

    if options.judge == "lexical":
        return Check("judge", True, "lexical judge (offline, no server)")
    try:
        check_routing(config, options)
    except RewardConfigError as error:
        return Check("judge", False, str(error))
    reward_model = config.reward.reward_model
    if not options.judge_urls and reward_model.enable:
        if not reward_model.model_path:
            return Check(
                "judge", False, "reward.reward_model.enable=True needs reward.reward_model.model_path"
            )
        rollout = reward_model.rollout
        return Check(
            "judge",
            True,
            f"verl will launch the judge {reward_model.model_path} with {rollout.name} "
            f"(tensor parallel {rollout.tensor_model_parallel_size}) on "
            f"{reward_model.nnodes} node(s) x {reward_model.n_gpus_per_node} GPU(s); not checked now",
        )
    try:
        urls, model = judge_endpoint(options, None, None)
        check_health(
            ChatClientConfig(
                urls=urls,
                model=model,
                api_key_env=options.api_key_env,
                health_timeout_s=options.health_timeout_s,
            )
        )
    except (RewardConfigError, JudgeUnavailable, ValueError) as error:
        return Check("judge", False, str(error))
    return Check("judge", True, f"{model} healthy at {', '.join(urls)}")
