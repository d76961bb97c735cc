"""Turn the CPU platform on in this process when ``VERL_PLATFORM=cpu`` (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping

PLATFORM_NAME = "cpu"
_state = {"active": False}


def is_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment asks verl for this platform (``VERL_PLATFORM=cpu``)."""
    env = os.environ if environ is None else environ
    return env.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def activate() -> bool:
    """Register the platform and install the shims if requested; idempotent. Returns whether active."""
    if not is_requested():
        return False
    if _state["active"]:
        return True
    from verl.plugin.platform import PlatformRegistry

    from verl_cpu_platform.cpu_platform import PlatformCPU
    from verl_cpu_platform.shims import install_torch_shims

    PlatformRegistry.register(platform=PLATFORM_NAME)(PlatformCPU)
    install_torch_shims()
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    _state["active"] = True
    return True
