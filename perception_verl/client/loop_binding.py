"""One event loop per owner: a :class:`ChatClient` or a scorer is bound to one loop and refuses others.

aiohttp sessions, asyncio locks and semaphores belong to the loop they were made on; an owner that
followed its callers from loop to loop would need a second set of them, so it raises instead.
"""

from __future__ import annotations

import asyncio


class LoopBinding:
    """The loop an owner is bound to: ``loop`` when given, else the first running loop that checks."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop

    def check(self, error: type[Exception], message: str) -> None:
        """Bind to the running loop if unbound; ``error(message)`` when running on another loop."""
        running = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = running
        elif self.loop is not running:
            raise error(message)
