"""verl's ``PlatformBase`` for the host CPU (gloo, fake Ray GPUs, no IPC); see the package docstring."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform import PlatformBase

from verl_cpu_platform.device import DEVICE_MODULE


class PlatformCPU(PlatformBase):
    """Runs verl's workers on the host CPU; Ray still places them by the ``GPU`` resource (fake GPUs)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> Any:
        return DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def current_device(self) -> str:  # type: ignore[override]
        # torch.cpu.current_device() is "cpu": verl passes this to .to()/torch.device()
        # (verl/utils/fsdp_utils.py:507 model.to(device=get_device_id())); an int would mean an
        # accelerator ("Cannot access accelerator device when none is available").
        return torch.cpu.current_device()

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        """Every rank uses the host."""

    def synchronize(self, device_index: int | None = None) -> None:
        """CPU kernels run synchronously."""

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        """No caching allocator to configure on CPU."""

    def empty_cache(self) -> None:
        """No caching allocator on CPU."""

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for the fake GPUs it assigns; verl reads ranks and device ids from it.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        """No device profiler on CPU."""

    def profiler_stop(self) -> None:
        """No device profiler on CPU."""

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def rollout_env_vars(self) -> dict[str, str]:
        # vLLM's own CPU platform (vllm/platforms/__init__.py:cpu_platform_plugin).
        return {"VLLM_TARGET_DEVICE": "cpu"}

    def cudart(self) -> Any:
        return None
