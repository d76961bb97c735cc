"""``sgl_kernel.mamba`` (linear-attention models): stubs that raise, naming themselves."""

from sglang_cpu_kernels.ops import MAMBA_STUBS

chunk_gated_delta_rule_cpu = MAMBA_STUBS["chunk_gated_delta_rule_cpu"]
causal_conv1d_fn_cpu = MAMBA_STUBS["causal_conv1d_fn_cpu"]
causal_conv1d_update_cpu = MAMBA_STUBS["causal_conv1d_update_cpu"]
