"""The one text form of a ground truth, or an error saying why a value has none.

Data sets and parquet files hand ground truths over as text, numbers, one-element arrays, ``None``
or NaN. Turning every value into text with ``str`` would make ``None`` the answer ``"None"`` (so
``\\boxed{None}`` scores 1) and a list the answer ``"['10']"``. :func:`ground_truth_text` keeps a
value only where it has one clear text form:

- text, stripped; empty text, bare ``$$`` and the placeholders ``None``, ``nan``, ``null`` (any case)
  are missing values;
- an integer (Python or NumPy; not a bool): its decimal digits (``10`` -> ``"10"``);
- a finite float: ``"10"`` for ``10.0``, else its shortest round-trip form (``2.5`` -> ``"2.5"``);
- a list, tuple or array of exactly one such text or number (``["10"]`` -> ``"10"``).

Everything else raises :class:`GroundTruthError`: ``None``, NaN and infinities, booleans, empty or
multi-element lists, nested lists, bytes and other types. ``missing`` on the error tells a missing
value (``None``, empty, NaN, a placeholder) from one that is present but unusable.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from perception_verl.errors import PerceptionVerlError

PLACEHOLDERS = frozenset({"none", "nan", "null"})


class GroundTruthError(PerceptionVerlError, ValueError):
    """A ground truth without one clear text form; ``missing`` when the value is absent or empty."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def _scalar_text(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        if not text or not text.strip("$").strip():
            raise GroundTruthError("the ground truth is empty", missing=True)
        if text.lower() in PLACEHOLDERS:
            raise GroundTruthError(f"the ground truth is the placeholder {text!r}", missing=True)
        return text
    if isinstance(value, (bool, np.bool_)):
        raise GroundTruthError(f"the ground truth is a boolean ({value!r}), not an answer", missing=False)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            raise GroundTruthError("the ground truth is NaN", missing=True)
        if math.isinf(number):
            raise GroundTruthError(f"the ground truth is {number!r}", missing=False)
        return str(int(number)) if number.is_integer() else repr(number)
    if value is None:
        raise GroundTruthError("the ground truth is missing (None)", missing=True)
    kind = type(value).__name__
    raise GroundTruthError(f"the ground truth is a {kind}, not text or a number", missing=False)


def ground_truth_text(value: object) -> str:
    """The text form of ``value`` (see the module docstring); raises :class:`GroundTruthError`."""
    if isinstance(value, (np.ndarray, list, tuple)):
        items: Sequence[object] = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return _scalar_text(value.item())
        if len(items) != 1:
            raise GroundTruthError(
                f"the ground truth is a list of {len(items)} items, not one answer", missing=not items
            )
        item = items[0]
        if isinstance(item, (np.ndarray, list, tuple)):
            raise GroundTruthError("the ground truth is a nested list, not one answer", missing=False)
        return _scalar_text(item)
    return _scalar_text(value)
