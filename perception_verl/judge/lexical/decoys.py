"""Decoys: the facts one key token away from a fact, which a token-listing response also "states"."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from perception_verl.judge.lexical.keys import _angle_key, _canonical_number, _dihedral, _Keys

_ROT = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
_RELATION_SWAP = {
    "parallel": "perpendicular",
    "perpendicular": "parallel",
    "parallelogram": "trapezoid",
    "trapezoid": "kite",
    "tangent": "secant",
    "secant": "tangent",
    "diameter": "radius",
    "radius": "diameter",
    "chord": "tangent",
    "congruent": "similar",
    "similar": "congruent",
    "isosceles": "scalene",
    "equilateral": "isosceles",
    "scalene": "equilateral",
    "inscribed": "circumscribed",
    "circumscribed": "inscribed",
    "rectangle": "rhombus",
    "rhombus": "rectangle",
    "square": "rhombus",
    "supplementary": "complementary",
    "complementary": "supplementary",
    "perimeter": "area",
    "area": "perimeter",
    "median": "altitude",
    "altitude": "median",
    "bisect": "perpendicular",
    "midpoint": "altitude",
    "center": "tangent",
    "right": "isosceles",
    "triangle": "pentagon",
    "circle": "hexagon",
    "quadrilateral": "hexagon",
}


def _other_number(number: str, step: int) -> str:
    if "." in number:
        return _canonical_number(repr(float(number) + step))
    return str(int(number) + step)


@lru_cache(maxsize=16384)
def _decoys(keys: _Keys) -> tuple[_Keys, ...]:
    """Facts one key token away from ``keys`` (another number, point name, angle or relation): what a
    response that lists tokens rather than stating facts also "states"."""
    if keys.empty:
        return ()
    out: list[_Keys] = []
    for number in sorted(keys.numbers):
        for step in (3, 17):
            out.append(replace(keys, numbers=(keys.numbers - {number}) | {_other_number(number, step)}))
    for group in sorted(keys.groups):
        other = _dihedral(group.translate(_ROT))
        if other not in keys.groups:
            out.append(replace(keys, groups=(keys.groups - {group}) | {other}))
    for angle in sorted(keys.angles):
        other = _angle_key(angle.translate(_ROT))
        if other not in keys.angles:
            out.append(replace(keys, angles=(keys.angles - {angle}) | {other}))
    for variable in sorted(keys.variables):
        out.append(replace(keys, variables=(keys.variables - {variable}) | {variable.translate(_ROT)}))
    for relation in sorted(keys.relations):
        other = _RELATION_SWAP.get(relation)
        if other is not None and other not in keys.relations:
            out.append(replace(keys, relations=(keys.relations - {relation}) | {other}))
    return tuple(out)
