"""One started judge per (process, event loop, judge settings), shared by every reward-manager instance.

verl builds the reward manager once per reward-loop Ray worker and calls ``run_single`` for
many samples concurrently on that worker's event loop. The judge (its HTTP session, dedupe cache
and health check) must be created once, on that loop, and not per sample: :func:`shared_judge`
creates it lazily on first use under a lock, starts it (health check) exactly once, and hands the
same object to every later caller on the same loop. :func:`close_all` closes them (called by the
manager's ``close`` and, best effort, at interpreter exit).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from perception_verl.judge.base import Judge

logger = logging.getLogger(__name__)


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    judge: Judge | None = None


_SLOTS: dict[tuple[int, object], tuple[asyncio.AbstractEventLoop, _Slot]] = {}
_GUARD = threading.Lock()
_ATEXIT_REGISTERED = False


def _slot_for(loop: asyncio.AbstractEventLoop, key: object) -> _Slot:
    global _ATEXIT_REGISTERED
    with _GUARD:
        entry = _SLOTS.get((id(loop), key))
        if entry is None or entry[0] is not loop:
            entry = (loop, _Slot())
            _SLOTS[(id(loop), key)] = entry
        if not _ATEXIT_REGISTERED:
            atexit.register(_close_at_exit)
            _ATEXIT_REGISTERED = True
        return entry[1]


async def shared_judge(key: object, factory: Callable[[], Judge]) -> Judge:
    """Return the started judge for ``key`` on the running loop, building and starting it on first use.

    ``key`` must be hashable and identify the judge settings. A failed start (e.g. the health check
    found no server) is raised to the caller and retried by the next caller.
    """
    loop = asyncio.get_running_loop()
    slot = _slot_for(loop, key)
    if slot.judge is not None:
        return slot.judge
    async with slot.lock:
        if slot.judge is None:
            judge = factory()
            try:
                await judge.start()
            except BaseException:
                await judge.close()
                raise
            slot.judge = judge
            logger.info("perception judge %s started on this worker", type(judge).__name__)
    return slot.judge


async def close_all() -> None:
    """Close every judge created on the running loop (call from that loop)."""
    loop = asyncio.get_running_loop()
    with _GUARD:
        mine = [(k, slot) for k, (owner, slot) in _SLOTS.items() if owner is loop]
        for k, _ in mine:
            del _SLOTS[k]
    for _, slot in mine:
        if slot.judge is not None:
            await slot.judge.close()


def _close_at_exit() -> None:
    """Best effort at interpreter exit: close judges whose loop is still usable."""
    with _GUARD:
        entries = list(_SLOTS.values())
        _SLOTS.clear()
    for loop, slot in entries:
        if slot.judge is None or loop.is_closed() or loop.is_running():
            continue
        try:
            loop.run_until_complete(slot.judge.close())
        except Exception:  # exit path: report, never raise
            logger.warning("could not close perception judge at exit", exc_info=True)
