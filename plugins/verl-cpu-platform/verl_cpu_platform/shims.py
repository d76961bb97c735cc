"""The two torch-level shims verl 0.9.1 needs on a CPU-only host (installed by ``activate``).

- ``verl/utils/distributed.py:63`` and ``:89`` build ``f"cpu:gloo,{get_device_name()}:{backend}"``,
  which is ``cpu:gloo,cpu:gloo`` on this platform; torch rejects a device named twice.
  :func:`dedupe_backend` keeps the first entry of each device.
- ``verl/workers/engine/fsdp/transformer_impl.py:462`` gives the FSDP2 reference (forward-only) model
  ``CPUOffloadPolicy(pin_memory=True)``; pinning host memory needs a CUDA driver. The policy's
  constructor is wrapped to pin only when CUDA is available (the class itself is kept, so
  ``isinstance`` checks in torch and verl still hold).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.distributed

_FLAG = "__verl_cpu_platform_shim__"


def dedupe_backend(backend: Any) -> Any:
    """``"cpu:gloo,cpu:gloo"`` -> ``"cpu:gloo"``: the first ``device:backend`` entry per device wins."""
    if not isinstance(backend, str) or "," not in backend:
        return backend
    kept: dict[str, str] = {}
    for entry in (part.strip() for part in backend.split(",")):
        device = entry.split(":", 1)[0] if ":" in entry else entry
        kept.setdefault(device, entry)
    return ",".join(kept.values())


def _wrap_init_process_group(fn: Any) -> Any:
    if getattr(fn, _FLAG, False):
        return fn

    @functools.wraps(fn)
    def init_process_group(*args: Any, **kwargs: Any) -> Any:
        if "backend" in kwargs:
            kwargs["backend"] = dedupe_backend(kwargs["backend"])
        elif args:
            args = (dedupe_backend(args[0]), *args[1:])
        return fn(*args, **kwargs)

    setattr(init_process_group, _FLAG, True)
    return init_process_group


def unpinned_offload() -> None:
    """Make ``CPUOffloadPolicy(pin_memory=True)`` pin only where CUDA exists (idempotent)."""
    try:
        from torch.distributed.fsdp import CPUOffloadPolicy
    except ImportError:
        return
    original = CPUOffloadPolicy.__init__
    if getattr(original, _FLAG, False):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not torch.cuda.is_available():
            self.pin_memory = False

    setattr(__init__, _FLAG, True)
    CPUOffloadPolicy.__init__ = __init__


def install_torch_shims() -> None:
    """Install both shims in this process (idempotent)."""
    torch.distributed.init_process_group = _wrap_init_process_group(torch.distributed.init_process_group)
    unpinned_offload()
