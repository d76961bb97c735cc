"""Pure-torch stand-ins for the ``sgl_kernel`` CPU operators that SGLang 0.5.23's CPU engine imports.

SGLang's CPU backend (``SGLANG_USE_CPU_ENGINE=1``) imports a few operators from ``sgl_kernel`` at module
load. They exist only in a source build of SGLang's CPU kernel package (AVX-512/AMX flags); PyPI's
``sglang-kernel`` holds CUDA builds only. This package gives the module ``sgl_kernel`` those names:
:func:`~sglang_cpu_kernels.ops.assign_req_to_token_pool_cpu` (the one reached while serving a dense
model) in plain torch, every other one a stub that raises :class:`NotImplementedError` naming itself.
It registers no ``torch.ops.sgl_kernel`` operators, so SGLang's AMX backend stays off.
"""

from sglang_cpu_kernels.ops import CPU_ENGINE_ENV, STUBS, assign_req_to_token_pool_cpu, cpu_engine_enabled

__all__ = ["CPU_ENGINE_ENV", "STUBS", "assign_req_to_token_pool_cpu", "cpu_engine_enabled"]
