"""The operators, in plain torch, and the stubs for the rest (see the package docstring).

Contracts are read from SGLang 0.5.23's own source (paths relative to ``site-packages/sglang``): each
function names the line that calls it and the Triton kernel whose work it does on GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

CPU_ENGINE_ENV = "SGLANG_USE_CPU_ENGINE"


def cpu_engine_enabled() -> bool:
    """Whether SGLang runs its CPU engine (``srt/utils/common.py:221`` ``is_cpu``: the variable is "1")."""
    return os.environ.get(CPU_ENGINE_ENV, "0") == "1"


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Write each request's new KV slots into its row of the request-to-token table, in place.

    Called by ``srt/mem_cache/allocation.py:746`` (``assign_req_to_token_pool_func``, on every extend
    and decode batch); on GPU the Triton kernel ``assign_req_to_token_pool`` of the same file does it.
    For request ``i`` of the batch, ``req_to_token[req_pool_indices[i], start_offset[i]:end_offset[i]]``
    takes the next ``end_offset[i] - start_offset[i]`` entries of ``out_cache_loc`` (packed request after
    request, in batch order). ``pool_len`` is the table's row length (``req_to_token.shape[1]``).
    """
    if req_to_token.dim() != 2 or req_to_token.shape[1] != pool_len:
        raise ValueError(f"req_to_token must be 2-D with rows of {pool_len}, got {tuple(req_to_token.shape)}")
    starts = start_offset.tolist()
    ends = end_offset.tolist()
    rows = req_pool_indices.tolist()
    if not len(rows) == len(starts) == len(ends):
        raise ValueError(f"batch sizes differ: {len(rows)} indices, {len(starts)} starts, {len(ends)} ends")
    taken = 0
    for row, start, end in zip(rows, starts, ends, strict=True):
        count = end - start
        if count <= 0:
            continue
        if end > pool_len or taken + count > out_cache_loc.numel():
            raise ValueError(f"request row {row}: slots {start}:{end} out of range")
        req_to_token[row, start:end] = out_cache_loc[taken : taken + count].to(req_to_token.dtype)
        taken += count


def _stub(name: str, caller: str) -> Callable[..., Any]:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"sgl_kernel.{name} (called by sglang/{caller}) is not part of perception-verl's CPU stand-in "
            "(plugins/sglang-cpu-kernels), which implements only assign_req_to_token_pool_cpu; this SGLang "
            "feature needs a source build of SGLang's CPU kernel package"
        )

    missing.__name__ = missing.__qualname__ = name
    missing.__doc__ = f"Not implemented here: raises, naming itself. Called by ``sglang/{caller}``."
    return missing


# Every other CPU operator SGLang 0.5.23 imports from the top level of ``sgl_kernel`` when its CPU engine
# is on, with the line that calls it. None is reached serving a dense model without speculative decoding.
STUB_CALLERS: dict[str, str] = {
    # KV copies between slots (memory_pool's move_kv_cache: speculative decoding, hybrid caches)
    "copy_all_layer_kv_cache_cpu": "kernels/ops/kvcache/cache_move.py:191",
    # speculative decoding (EAGLE)
    "rotate_input_ids_cpu": "kernels/ops/speculative/multi_layer_eagle.py:69",
    "fill_bonus_tokens_cpu": "kernels/ops/speculative/eagle.py:40",
    "fill_accept_out_cache_loc_cpu": "kernels/ops/speculative/eagle.py:80",
    "assign_draft_cache_locs_contiguous_cpu": "kernels/ops/speculative/cache_locs.py:99",
    "assign_extend_cache_locs_cpu": "kernels/ops/speculative/cache_locs.py:740",
    "build_tree_kernel_efficient_cpu": "kernels/ops/speculative/spec_tree.py:412",
    "verify_tree_greedy_cpu": "kernels/ops/speculative/spec_tree.py:510",
    # the AMX attention backend (off here: no torch.ops.sgl_kernel operators are registered)
    "build_draft_decode_metadata_cpu": "srt/layers/attention/intel_amx_backend.py:440",
}
# ``sgl_kernel.mamba``: linear-attention models (GDN, KDA).
MAMBA_STUB_CALLERS: dict[str, str] = {
    "chunk_gated_delta_rule_cpu": "srt/layers/attention/linear/kernels/gdn_triton.py:30",
    "causal_conv1d_fn_cpu": "srt/layers/attention/linear/gdn_backend.py:186",
    "causal_conv1d_update_cpu": "srt/layers/attention/linear/gdn_backend.py:187",
}
STUBS: dict[str, Callable[..., Any]] = {name: _stub(name, caller) for name, caller in STUB_CALLERS.items()}
MAMBA_STUBS: dict[str, Callable[..., Any]] = {
    name: _stub(f"mamba.{name}", caller) for name, caller in MAMBA_STUB_CALLERS.items()
}
