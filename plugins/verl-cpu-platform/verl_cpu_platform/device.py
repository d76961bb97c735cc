"""A ``torch.cpu`` wrapper answering the CUDA-style device-module calls verl makes.

verl calls ``get_torch_device().<name>()`` (the platform's ``device_module``) for memory and stream
management, e.g. ``empty_cache`` (27 call sites), ``mem_get_info`` (``verl/utils/memory_utils.py``,
``workers/rollout/vllm_rollout``), ``memory_allocated``/``memory_reserved``
(``verl/utils/debug/performance.py:49``), ``max_memory_*`` (``verl/utils/profiler``), ``ipc_collect``
(``workers/rollout/vllm_rollout/bucketed_weight_transfer.py``), ``set_per_process_memory_fraction``
(``workers/engine_workers.py``), ``get_rng_state``/``set_rng_state``. ``torch.cpu`` lacks them. Memory
figures are the process's resident set (there is no caching allocator on CPU), free memory is the
host's available memory.
"""

from __future__ import annotations

import resource
from typing import Any

import psutil
import torch


class CpuDeviceModule:
    """``torch.cpu`` plus the ``torch.cuda``-style functions verl calls; other names go to ``torch.cpu``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def set_device(device: Any) -> None:
        """Nothing to select: every rank uses the host."""

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def synchronize(device: Any = None) -> None:
        """CPU kernels run synchronously."""

    @staticmethod
    def empty_cache() -> None:
        """No caching allocator on CPU."""

    @staticmethod
    def ipc_collect() -> None:
        """No CUDA IPC handles on CPU."""

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        """No device memory pool to cap on CPU."""

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        """``(free, total)`` bytes of host memory."""
        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return int(psutil.Process().memory_info().rss)

    memory_reserved = memory_allocated

    @staticmethod
    def max_memory_allocated(device: Any = None) -> int:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    max_memory_reserved = max_memory_allocated

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        """The peak resident set cannot be reset."""

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed


DEVICE_MODULE = CpuDeviceModule()
