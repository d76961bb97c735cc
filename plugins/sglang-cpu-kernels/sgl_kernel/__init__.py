"""``sgl_kernel`` as SGLang's CPU engine imports it: perception-verl's pure-torch stand-in.

Provided by ``plugins/sglang-cpu-kernels`` (installed only into ``.venv-sglang``). Active only under
``SGLANG_USE_CPU_ENGINE=1``: otherwise importing it raises ImportError, as if no kernel package were
installed, so a GPU run never mistakes it for SGLang's CUDA kernels.
"""

from sglang_cpu_kernels.ops import STUBS, assign_req_to_token_pool_cpu, cpu_engine_enabled

if not cpu_engine_enabled():
    raise ImportError(
        "this sgl_kernel is perception-verl's CPU stand-in (plugins/sglang-cpu-kernels), active only with "
        "SGLANG_USE_CPU_ENGINE=1; on a GPU install SGLang's own kernel package (sglang-kernel)"
    )

copy_all_layer_kv_cache_cpu = STUBS["copy_all_layer_kv_cache_cpu"]
rotate_input_ids_cpu = STUBS["rotate_input_ids_cpu"]
fill_bonus_tokens_cpu = STUBS["fill_bonus_tokens_cpu"]
fill_accept_out_cache_loc_cpu = STUBS["fill_accept_out_cache_loc_cpu"]
assign_draft_cache_locs_contiguous_cpu = STUBS["assign_draft_cache_locs_contiguous_cpu"]
assign_extend_cache_locs_cpu = STUBS["assign_extend_cache_locs_cpu"]
build_tree_kernel_efficient_cpu = STUBS["build_tree_kernel_efficient_cpu"]
verify_tree_greedy_cpu = STUBS["verify_tree_greedy_cpu"]
build_draft_decode_metadata_cpu = STUBS["build_draft_decode_metadata_cpu"]

__all__ = ["assign_req_to_token_pool_cpu", *STUBS]
