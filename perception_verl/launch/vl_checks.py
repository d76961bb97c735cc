"""Dry-run checks a vision-language policy needs: images reach the rollout, every row has an image.

- :func:`check_rollout_images`: vLLM >= 0.29 normalises pixels inside Qwen2.5-VL with persistent buffers
  (``visual.input_norm``, ``mm_device_do_normalize`` on by default); verl's default
  ``rollout.load_format=dummy`` randomises them and its weight sync never sends them, so the rollout
  would sample blind to every image. The check names the installed vLLM and the setting, and fails on
  that combination.
- :func:`check_image_rows`: a row without an image crashes verl 0.9.1's first log-prob pass of a VL
  policy under transformers 5.x (:data:`TEXT_ROW_CRASH`), hours after the start on a GPU cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from perception_verl.data.images import TEXT_ROW_CRASH
from perception_verl.launch.checks import Check

NORMALIZING_VLLM = (0, 29)
ENGINE_FLAG = "actor_rollout_ref.rollout.engine_kwargs.vllm.mm_device_do_normalize"


def policy_is_vl(model_path: str) -> bool | None:
    """Whether the policy is a vision-language model: its ``config.json`` has a ``vision_config``.

    A hub id (no local folder) is read by name (``VL`` in it); None when that cannot tell.
    """
    folder = Path(os.path.expanduser(model_path))
    config = folder / "config.json"
    if config.is_file():
        try:
            return "vision_config" in json.loads(config.read_text())
        except (OSError, ValueError):
            return None
    if folder.exists():
        return None
    return True if "vl" in model_path.lower().replace("-", " ").split("/")[-1].split() else None


def vllm_version() -> str | None:
    """The installed vLLM's version (the ``vllm`` distribution), or None where vLLM is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vllm")
    except PackageNotFoundError:
        return None


def _release(text: str) -> tuple[int, int] | None:
    parts = text.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def check_rollout_images(config: DictConfig, *, installed: str | None = None) -> Check:
    """The rollout of a VL policy sees its images: no dummy load where vLLM normalises on the device.

    ``installed`` overrides the vLLM version read from this environment (tests).
    """
    name = "rollout images"
    found = installed if installed is not None else vllm_version()
    where = f"vLLM {found}" if found else "vLLM not installed here (the GPU host's version decides)"
    load_format = OmegaConf.select(config, "actor_rollout_ref.rollout.load_format", default="dummy")
    normalize = OmegaConf.select(config, ENGINE_FLAG, default=None)
    setting = f"load_format={load_format}"
    if normalize is not None:
        setting += f", mm_device_do_normalize={normalize}"
    if config.actor_rollout_ref.rollout.name != "vllm":
        return Check(name, True, f"rollout {config.actor_rollout_ref.rollout.name}; {setting}")
    vl = policy_is_vl(str(config.actor_rollout_ref.model.path))
    if vl is False:
        return Check(name, True, f"{where}; text policy; {setting}")
    release = _release(found) if found else None
    normalizes = release is None or release >= NORMALIZING_VLLM
    if load_format == "dummy" and normalize is not False and normalizes:
        return Check(
            name,
            False,
            f"{where}; {setting}: vLLM >= 0.29 normalises pixels with buffers that the dummy load leaves "
            "random and verl's weight sync never sends, so the rollout would ignore every image; set "
            f"actor_rollout_ref.rollout.load_format=auto (any vLLM) or +{ENGINE_FLAG}=False (vLLM >= 0.29)",
        )
    return Check(name, True, f"{where}; {setting}")


def rows_without_images(path: str, image_key: str) -> tuple[int, list[int]]:
    """(rows, indices of rows whose ``image_key`` column holds no image) of a verl parquet."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(Path(os.path.expanduser(path)))
    if image_key not in parquet.schema_arrow.names:
        return parquet.metadata.num_rows, list(range(parquet.metadata.num_rows))
    values = parquet.read(columns=[image_key]).column(0).to_pylist()
    return len(values), [i for i, images in enumerate(values) if not images]


def check_image_rows(role: str, path: str, config: DictConfig) -> Check | None:
    """With a VL policy, every row must carry an image; None where the check does not apply."""
    if policy_is_vl(str(config.actor_rollout_ref.model.path)) is not True:
        return None
    image_key = str(OmegaConf.select(config, "data.image_key", default="images"))
    try:
        rows, missing = rows_without_images(path, image_key)
    except (OSError, ValueError):
        return None
    name = f"images ({role})"
    if not missing:
        return Check(name, True, f"all {rows} rows of {path} carry an image ({image_key})")
    shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
    return Check(
        name,
        False,
        f"{len(missing)} of {rows} rows of {path} have no image in {image_key!r} (rows {shown}); with a "
        f"vision-language policy verl 0.9.1 crashes on them at its first log-prob pass: {TEXT_ROW_CRASH}. "
        "Drop those rows or give them an image",
    )
