"""The one base class of every error this package raises: ``except PerceptionVerlError`` catches them all.

Each edge keeps its own subclass (config, data files, judge client, dumps, ...), which also derives
from the built-in class it always had (``ValueError``, ``RuntimeError``), so existing ``except``
clauses keep working.
"""

from __future__ import annotations


class PerceptionVerlError(Exception):
    """Base of every perception-verl error."""


class MissingFieldError(PerceptionVerlError, KeyError):
    """A required field is absent from a row or batch (e.g. ``reward_model.ground_truth``).

    A ``KeyError`` too, for callers that catch that; the message names the field and the fix.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
