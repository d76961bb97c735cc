"""The ``sgl_kernel`` CPU stand-in (``plugins/sglang-cpu-kernels``) against plain-torch references.

The operator is checked in this interpreter (torch only; the package file is loaded by path), against a
reference written from SGLang 0.5.23's Triton kernel ``assign_req_to_token_pool``
(``sglang/srt/mem_cache/allocation.py``): program ``pid`` copies
``out_cache_loc[sum(end[:pid] - start[:pid]) :][: end[pid] - start[pid]]`` to
``req_to_token[req_pool_indices[pid], start[pid]:end[pid]]``. How SGLang picks the module up (the name
``sgl_kernel``, only under ``SGLANG_USE_CPU_ENGINE=1``) is checked in ``.venv-sglang``; that SGLang serves
with it, by the real-engine tests (``real_judge[sglang]``).
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.support.engine_env import require_sglang_python

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "plugins" / "sglang-cpu-kernels" / "sglang_cpu_kernels" / "ops.py"


@pytest.fixture(scope="module")
def ops() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sglang_cpu_kernels_ops_under_test", OPS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_assign(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
) -> torch.Tensor:
    """What the Triton kernel computes, vectorised: a new table (the input is left alone)."""
    table = req_to_token.clone()
    lengths = (end_offset - start_offset).clamp(min=0)
    packed_start = torch.cumsum(lengths, 0) - lengths
    rows = torch.repeat_interleave(req_pool_indices.long(), lengths)
    within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(packed_start, lengths)
    cols = torch.repeat_interleave(start_offset.long(), lengths) + within
    table[rows, cols] = out_cache_loc[: int(lengths.sum())].to(table.dtype)
    return table


def random_batch(seed: int) -> tuple[torch.Tensor, ...]:
    """A batch as SGLang builds it: distinct pool rows, extends of 0-40 tokens after a cached prefix."""
    gen = torch.Generator().manual_seed(seed)
    pool_rows, pool_len, batch = 16, 64, int(torch.randint(1, 9, (1,), generator=gen))
    indices = torch.randperm(pool_rows, generator=gen)[:batch].to(torch.int64)
    starts = torch.randint(0, 24, (batch,), generator=gen, dtype=torch.int64)
    ends = starts + torch.randint(0, 41, (batch,), generator=gen, dtype=torch.int64)
    loc = torch.randperm(8192, generator=gen)[: int((ends - starts).sum()) + 5].to(torch.int64)
    table = torch.full((pool_rows, pool_len), -1, dtype=torch.int32)
    return indices, table, starts, ends, loc


@pytest.mark.parametrize("seed", range(20))
def test_assign_req_to_token_pool_matches_the_triton_kernels_reference(ops: ModuleType, seed: int) -> None:
    indices, table, starts, ends, loc = random_batch(seed)
    expected = reference_assign(indices, table, starts, ends, loc)
    ops.assign_req_to_token_pool_cpu(indices, table, starts, ends, loc, table.shape[1])
    assert torch.equal(table, expected)
    assert table.dtype == torch.int32


def test_a_decode_step_writes_one_slot_per_request(ops: ModuleType) -> None:
    # Decode: each request gets one new slot at its current length (start = seq_len - 1, end = seq_len).
    table = torch.zeros((4, 8), dtype=torch.int32)
    ops.assign_req_to_token_pool_cpu(
        torch.tensor([2, 0]), table, torch.tensor([3, 5]), torch.tensor([4, 6]), torch.tensor([70, 71]), 8
    )
    assert table[2, 3] == 70 and table[0, 5] == 71 and int(table.count_nonzero()) == 2


def test_out_of_range_slots_are_refused(ops: ModuleType) -> None:
    table = torch.zeros((2, 4), dtype=torch.int32)
    with pytest.raises(ValueError, match="out of range"):
        ops.assign_req_to_token_pool_cpu(
            torch.tensor([0]), table, torch.tensor([2]), torch.tensor([6]), torch.arange(4), 4
        )
    with pytest.raises(ValueError, match="rows of 5"):
        ops.assign_req_to_token_pool_cpu(
            torch.tensor([0]), table, torch.tensor([0]), torch.tensor([1]), torch.arange(4), 5
        )


def test_every_other_operator_raises_naming_itself_and_its_caller(ops: ModuleType) -> None:
    stubs = {**ops.STUBS, **ops.MAMBA_STUBS}
    assert "copy_all_layer_kv_cache_cpu" in stubs and "assign_req_to_token_pool_cpu" not in stubs
    for name, stub in stubs.items():
        with pytest.raises(NotImplementedError) as info:
            stub(torch.zeros(1))
        assert name in str(info.value) and "sglang/" in str(info.value)


PROBE = """
import importlib, os, sys
os.environ.pop("SGLANG_USE_CPU_ENGINE", None)
try:
    import sgl_kernel
except ImportError as err:
    print("off:", err)
else:
    sys.exit("sgl_kernel imported without SGLANG_USE_CPU_ENGINE=1")
os.environ["SGLANG_USE_CPU_ENGINE"] = "1"
sys.modules.pop("sgl_kernel", None)
import sgl_kernel
import torch
from sgl_kernel.mamba import causal_conv1d_fn_cpu
assert callable(sgl_kernel.assign_req_to_token_pool_cpu)
# SGLang's test for its AMX backend (sglang/srt/utils/common.py:354-358), without importing all of SGLang.
print("amx backend:", hasattr(torch.ops.sgl_kernel, "convert_weight_packed"))
"""


@pytest.mark.engine
def test_sglang_imports_the_stand_in_only_on_its_cpu_engine() -> None:
    python = require_sglang_python()
    result = subprocess.run(
        [str(python), "-W", "ignore", "-c", PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "off: this sgl_kernel is perception-verl's CPU stand-in" in result.stdout
    # No torch.ops.sgl_kernel operators are registered, so SGLang's AMX attention backend stays off.
    assert "amx backend: False" in result.stdout
