"""verl plugin entry point: registers the perception reward manager under ``"perception"``.

``pyproject.toml`` declares this module in verl's ``verl.plugins`` entry-point group, which verl
imports on every ``import verl`` (the driver and every Ray worker), so ``pip install perception-verl``
alone makes ``reward.reward_manager.source=register reward.reward_manager.name=perception`` work.

verl logs a plugin that fails to load only at DEBUG, so this module never raises: a failed
registration is logged at WARNING with its cause and kept for :func:`plugin_status`, which the dry
run reports. The registry itself is verl's (``verl.experimental.reward_loop.reward_manager``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "verl.plugins"
ENTRY_POINT_NAME = "perception"
REGISTERED_NAME = "perception"
MANAGER_MODULE = "perception_verl.integration.manager"

_errors: list[str] = []


@dataclass(frozen=True)
class PluginStatus:
    """What verl sees of this plugin in the current process."""

    entry_point: str | None  # "module:attr" of the installed entry point, None when not installed
    policy: str  # VERL_USE_EXTERNAL_PLUGINS as verl reads it ("auto", "none" or a list of names)
    registered: bool  # verl's reward-manager registry maps "perception" to our manager
    error: str | None  # why registration failed in this process, if it did

    @property
    def enabled_by_policy(self) -> bool:
        if self.policy == "auto":
            return True
        if self.policy == "none":
            return False
        return ENTRY_POINT_NAME in {name.strip() for name in self.policy.split(",")}


def register() -> str | None:
    """Register the manager in verl's registry (idempotent); the failure text, or ``None`` on success."""
    partial = sys.modules.get(MANAGER_MODULE)
    if partial is not None and not hasattr(partial, "PerceptionRewardManager"):
        # verl was first imported by the manager module itself, which is still executing: the
        # manager is not defined yet. Importing perception_verl.integration.register later completes it.
        message = f"{MANAGER_MODULE} was still being imported when verl loaded its plugins"
        _errors.append(message)
        logger.debug("perception-verl: registration deferred: %s", message)
        return message
    try:
        # Imported here: verl imports this module while it loads its plugins (see the module docstring).
        from perception_verl.integration.register import register_manager

        register_manager()
    except Exception as error:  # verl would hide it at DEBUG: logged here and kept
        message = f"{type(error).__name__}: {error}"
        _errors.append(message)
        logger.warning(
            "perception-verl: could not register reward manager %r with verl (%s); "
            "reward.reward_manager.source=register name=%s will fail in this process",
            REGISTERED_NAME,
            message,
            REGISTERED_NAME,
        )
        return message
    return None


def installed_entry_point() -> str | None:
    """The installed ``verl.plugins`` entry point named ``perception`` (``module:attr``), if any."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == ENTRY_POINT_NAME:
            return entry.value
    return None


def plugin_status() -> PluginStatus:
    """Entry point installed, verl's plugin policy, registry contents and any registration error."""
    registered = False
    try:
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

        manager = REWARD_MANAGER.get(REGISTERED_NAME)
        registered = manager is not None and manager.__module__ == MANAGER_MODULE
    except Exception as error:
        _errors.append(f"{type(error).__name__}: {error}")
    return PluginStatus(
        entry_point=installed_entry_point(),
        policy=os.getenv("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower(),
        registered=registered,
        error=_errors[-1] if _errors and not registered else None,
    )


# The entry-point contract: verl imports this module, and importing it registers the manager.
register()
