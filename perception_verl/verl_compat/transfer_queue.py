"""TransferQueue reads and writes of a v1 trainer batch, as verl 0.9.1 lays them out.

A batch is verl's ``KVBatchMeta`` (``keys``, ``partition_id``, ``tags``); a sample key is
``{uid}_{session_id}_{index}`` (``verl/trainer/ppo/v1/agent_loop_tq.py:178-193``); ``rm_scores`` is a
jagged row per sample with the score on its last response token, written back as verl's own
colocated reward step writes (``verl/trainer/ppo/v1/trainer_base.py:1529-1560``, ``tu.get_tensordict``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

KvBatchGet = Callable[..., Any]
KvBatchPut = Callable[..., Any]

TRAIN_PARTITION = "train"
"""The partition verl's v1 trainer samples its training batches from (validation uses ``val``)."""


def kv_functions() -> tuple[KvBatchGet, KvBatchPut]:
    """TransferQueue's ``kv_batch_get`` and ``kv_batch_put`` (the client verl's task runner initialised)."""
    import transfer_queue as tq

    return tq.kv_batch_get, tq.kv_batch_put


def read_fields(batch: Any, kv_batch_get: KvBatchGet, fields: Sequence[str]) -> Any:
    """``fields`` of every sample of ``batch``."""
    return kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(fields))


def padding_mask(batch: Any) -> list[bool]:
    """True for each real sample of ``batch`` (verl tags padding ``is_padding``); all True when all pad."""
    keep = [not tag.get("is_padding", False) for tag in batch.tags]
    return keep if any(keep) else [True] * len(keep)


def sessions_per_group(keys: Sequence[str]) -> dict[str, int]:
    """Distinct rollout sessions per prompt group, from verl's ``{uid}_{session_id}_{index}`` keys."""
    sessions: dict[str, set[str]] = {}
    for key in keys:
        uid, session, _index = key.rsplit("_", 2)
        sessions.setdefault(uid, set()).add(session)
    return {uid: len(found) for uid, found in sessions.items()}


def put_rm_scores(batch: Any, kv_batch_put: KvBatchPut, rows: dict[int, torch.Tensor]) -> None:
    """Write ``rm_scores`` rows (by position in ``batch``) back, as verl's colocated reward step does."""
    from verl.utils import tensordict_utils as tu

    positions = sorted(rows)
    rm_scores = torch.nested.as_nested_tensor([rows[i] for i in positions], layout=torch.jagged)
    kv_batch_put(
        keys=[batch.keys[i] for i in positions],
        partition_id=batch.partition_id,
        fields=tu.get_tensordict({"rm_scores": rm_scores}),
    )
