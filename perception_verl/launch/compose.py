"""Compose verl's installed PPO trainer config with hydra overrides, as ``main_ppo`` would.

:func:`compose_trainer_config` loads ``verl/trainer/config/ppo_trainer.yaml`` through hydra's
compose API (no training, no GPU), applies the overrides exactly as they would be given on the
``main_ppo`` command line, then runs verl's ``migrate_legacy_reward_impl`` so legacy keys
(``reward_model.*``, ``custom_reward_function``) land where verl's reward loop reads them.
A misspelt key raises :class:`ComposeError` naming the override.

verl 0.9.1's ``main_ppo`` itself does not run that migration (only its fully-async entry point
does), so legacy keys given to ``main_ppo`` are silently ignored: :func:`legacy_reward_keys` lists
them so a dry run can refuse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from perception_verl.errors import PerceptionVerlError

CONFIG_NAME = "ppo_trainer"
LEGACY_SECTIONS = ("reward_model", "custom_reward_function", "sandbox_fusion")


class ComposeError(PerceptionVerlError, ValueError):
    """Overrides that verl's trainer config does not accept."""


def verl_config_dir() -> Path:
    """The ``trainer/config`` directory of the installed verl."""
    import verl.trainer

    return Path(verl.trainer.__file__).resolve().parent / "config"


def _summarise(error: Exception) -> str:
    text = str(error).strip()
    cause = error.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text}: {str(cause).strip()}"
    return text


def legacy_reward_keys(config: DictConfig) -> list[str]:
    """Legacy reward keys holding a value (before migration), e.g. ``reward_model.reward_manager``."""
    from omegaconf import OmegaConf

    found: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}")
        elif node is not None:
            found.append(prefix)

    for section in LEGACY_SECTIONS:
        if section in config:
            walk(OmegaConf.to_container(config[section], resolve=False), section)
    return found


def compose_trainer_config(
    overrides: Sequence[str], *, config_name: str = CONFIG_NAME, migrate: bool = True
) -> DictConfig:
    """Compose verl's trainer config with ``overrides``; migrate its legacy reward keys unless told not to."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from verl.experimental.reward_loop import migrate_legacy_reward_impl

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
            config = compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ComposeError(f"verl's trainer config rejects the overrides: {_summarise(error)}") from error
    finally:
        GlobalHydra.instance().clear()
    return migrate_legacy_reward_impl(config) if migrate else config
