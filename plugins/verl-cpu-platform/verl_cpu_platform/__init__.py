"""A CPU platform for verl 0.9.1, registered from outside verl; active only under ``VERL_PLATFORM=cpu``.

verl imports every ``verl.plugins`` entry point on ``import verl`` (``verl/__init__.py:59-76``), in the
driver and in every Ray worker. This package's entry point (:mod:`verl_cpu_platform.plugin`) calls
:func:`activate`, which does nothing unless ``VERL_PLATFORM=cpu``; then it registers
:class:`~verl_cpu_platform.cpu_platform.PlatformCPU` with verl's ``PlatformRegistry`` under the name
``cpu`` (chosen by ``verl/plugin/platform/platform_manager.py:_detect_platform_name``) and installs
the shims below. Each one answers a verl line that assumes an accelerator:

- device ``cpu``, backend ``gloo`` (``platform.communication_backend_name``), Ray resource ``GPU``
  (fake GPUs from ``+ray_kwargs.ray_init.num_gpus=N``; ``single_controller/ray/base.py`` places the
  workers by that resource name), IPC off (``verl/utils/device.py:353 is_support_ipc`` ->
  ``workers/rollout/vllm_rollout/vllm_rollout.py:143`` then syncs weights through shared memory);
- :mod:`verl_cpu_platform.device`: a ``torch.cpu`` wrapper answering the CUDA-style calls verl makes
  on ``get_torch_device()`` (``empty_cache``, ``mem_get_info``, ``memory_reserved``, ``ipc_collect``,
  ``set_per_process_memory_fraction``, ``get_rng_state``, ...);
- :func:`verl_cpu_platform.shims.dedupe_backend`: ``verl/utils/distributed.py:63,89`` build the
  backend ``f"cpu:gloo,{device}:{backend}"``, i.e. ``cpu:gloo,cpu:gloo`` here, which torch rejects;
- :func:`verl_cpu_platform.shims.unpinned_offload`: ``verl/workers/engine/fsdp/transformer_impl.py:462``
  builds the FSDP2 reference model with ``CPUOffloadPolicy(pin_memory=True)``; pinning needs a CUDA
  driver;
- ``VERL_ENGINE_DEVICE=cuda`` (set if unset): ``workers/engine/fsdp/transformer_impl.py:1143``
  registers the FSDP engines for ``cuda``/``npu`` only, and ``workers/engine/base.py:405`` lets this
  variable pick the registry key.

- :mod:`verl_cpu_platform.vllm_shim` (vLLM's ``vllm.general_plugins`` entry point, same condition):
  vLLM-CPU prepacks linear weights and drops the parameters
  (``vllm/model_executor/layers/linear.py:216``), so verl's per-step weight reload
  (``verl/workers/rollout/vllm_rollout/utils.py:326``) fails; the shim keeps vLLM's plain
  ``F.linear`` fallback on the live weights;
- ``current_device()`` is ``"cpu"`` (``torch.cpu.current_device()``): verl moves modules with
  ``.to(get_device_id())`` (``verl/utils/fsdp_utils.py:507``), where an int means an accelerator.

verl's and vLLM's sources are never edited.
"""

from verl_cpu_platform.activate import PLATFORM_NAME, activate, is_requested

__all__ = ["PLATFORM_NAME", "activate", "is_requested"]
