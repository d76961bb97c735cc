"""Run a pure-Python function in a worker thread and stop it if it runs past its deadline.

math-verify's own timeouts rely on signals, which only work in the main thread, and verl calls
reward managers from worker threads and event loops. :func:`DeadlineCall` runs the function
in the event loop's default executor; when the deadline passes, it raises :class:`DeadlineExceeded`
inside that thread (CPython's ``PyThreadState_SetAsyncExc``), so a stalled parser stops at its next
bytecode instead of holding the interpreter lock for the rest of the run. Time spent inside a single
C call (e.g. one huge integer power) still runs to its end before the thread stops; the accuracy
module's input limits guard against those.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """Raised inside the worker thread, and to the caller, when the deadline passes."""


@dataclass
class _Run:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ident: int | None = None
    finished: bool = False
    abandoned: bool = False


def _guarded(run: _Run, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    with run.lock:
        if run.abandoned:
            raise DeadlineExceeded("abandoned before it started")
        run.ident = threading.get_ident()
    try:
        return fn(*args)
    finally:
        with run.lock:
            run.finished = True


class DeadlineCall:
    """``fn(*args)`` started now in the running loop's default executor; :meth:`result` bounds the wait.

    A call still running when :meth:`result` gives up is interrupted in its thread; one still queued
    never starts.
    """

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._name = getattr(fn, "__name__", repr(fn))
        self._run = _Run()
        self._future = asyncio.get_running_loop().run_in_executor(None, _guarded, self._run, fn, args)

    async def result(self, timeout_s: float) -> Any:
        """The call's result; :class:`DeadlineExceeded` (after stopping the call) past ``timeout_s``."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), max(timeout_s, 0.0))
        except asyncio.TimeoutError:
            if self.abandon():
                logger.warning("stopped %s after %.1f s", self._name, timeout_s)
            raise DeadlineExceeded(f"{self._name} ran past {timeout_s:g} s") from None

    def abandon(self) -> bool:
        """Stop the call: never start it if queued, interrupt it if running. True if it was running."""
        self._future.add_done_callback(_drain)
        with self._run.lock:
            self._run.abandoned = True
            if self._run.finished or self._run.ident is None:
                return False
            changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._run.ident), ctypes.py_object(DeadlineExceeded)
            )
            return changed == 1


def _drain(future: asyncio.Future[Any]) -> None:
    """Consume an abandoned call's outcome so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()
