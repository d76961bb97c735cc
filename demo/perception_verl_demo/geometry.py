"""A procedural geometry data set for the miniature Perception-R1 experiment, seeded and offline.

Five problem families, each drawn with PIL and stated so that the answer follows from the facts the
annotations list (``visual_key_info``, the published ``<infoK>`` form):

- ``parallelogram``: opposite sides are equal (the answer is one of the given sides);
- ``right_triangle``: the Pythagorean theorem on an integer triple (the answer must be computed);
- ``circle``: two radii of one circle are equal;
- ``vertical_angles``: two intersecting lines, vertical angles are equal;
- ``isosceles``: the base angles of an isosceles triangle are equal.

Every fact of a problem is also written in its text. The tiny twin policy cannot read digits from a
figure, so the facts it can restate come from the text: the miniature checks the perception
reward's effect and the evaluation chain, not visual perception.

:func:`generate` draws ``n_train`` training and ``n_test`` held-out problems (families in turn); a
held-out problem shares neither its numbers nor its point names with any training problem of its
family. ``n_warmup`` more problems (split ``warmup``), drawn after both and sharing neither numbers nor
names with any held-out problem of their family, are the starting policy's warm-up set: the stand-in
for what a pretrained model has read, so the held-out problems stay unseen.
:func:`write_source` writes them in Geometry3K's hub layout (``data/<split>-00000-of-00001.parquet``:
images, problem, answer, id, choices, ground_truth; the warm-up set as the ``validation`` split) and the
annotations of every split in the published form, for ``perception-verl build-geometry3k``.

``python -m perception_verl_demo.geometry OUT [--seed S] [--train N] [--test M] [--warmup W]``
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

FAMILIES = ("parallelogram", "right_triangle", "circle", "vertical_angles", "isosceles")
SPLITS = ("train", "test")
WARMUP = "warmup"
# The warm-up problems travel as Geometry3K's third split, which the paper's recipe leaves unused.
SOURCE_SPLIT = {"train": "train", "test": "test", WARMUP: "validation"}
# Point names: capital letters but A and I, which read as words at the start of a sentence.
LETTERS = "BCDEFGHJKLMNOPQRSTUVWXYZ"
TEST_ID_OFFSET = 10_000
WARMUP_ID_OFFSET = 20_000
CANVAS = (224, 196)


@dataclass(frozen=True)
class GeometryProblem:
    """One generated problem: its text (with ``<image>``: the statement of the facts, then the question),
    answer, a tempting wrong answer, the facts the answer needs, one line of correct and one of wrong
    reasoning, the terse lines, and what the figure shows (``names``, ``numbers``)."""

    id: int
    split: str
    family: str
    names: tuple[str, ...]
    numbers: tuple[int, ...]
    problem: str
    statement: str
    answer: str
    wrong_answer: str
    facts: tuple[str, ...]
    reasoning: str
    wrong_reasoning: str
    terse: str
    wrong_terse: str

    @property
    def visual_key_info(self) -> str:
        """The facts in the published form: ``<info1>..</info1><info2>..</info2>...``."""
        return "".join(f"<info{k}>{fact}</info{k}>" for k, fact in enumerate(self.facts, start=1))

    @property
    def key(self) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
        return (self.family, self.names, self.numbers)


# --- families: each maps (names, numbers) to the problem's texts -------------------------------------


def _parallelogram(names: Sequence[str], numbers: Sequence[int]) -> dict:
    p, q, r, s = names
    a, b = numbers
    return {
        "statement": f"{p}{q}{r}{s} is a parallelogram with {p}{q} = {a} and {q}{r} = {b}.",
        "question": f"Find {r}{s}.",
        "answer": a,
        "wrong_answer": b,
        "facts": (f"{p}{q}{r}{s} is a parallelogram", f"{p}{q} = {a}", f"{q}{r} = {b}"),
        "reasoning": f"Opposite sides of a parallelogram are equal, so {r}{s} = {p}{q} = {a}.",
        "wrong_reasoning": f"I take {r}{s} to be equal to the side next to it, so {r}{s} = {q}{r} = {b}.",
        "terse": f"Opposite sides are equal, so the answer is {a}.",
        "wrong_terse": f"Neighbouring sides are equal, so the answer is {b}.",
    }


def _right_triangle(names: Sequence[str], numbers: Sequence[int]) -> dict:
    x, y, z = names
    a, b, c = numbers
    return {
        "statement": f"Triangle {x}{y}{z} has a right angle at {z}, with {x}{z} = {a} and {y}{z} = {b}.",
        "question": f"Find {x}{y}.",
        "answer": c,
        "wrong_answer": a + b,
        "facts": (f"Triangle {x}{y}{z} has a right angle at {z}", f"{x}{z} = {a}", f"{y}{z} = {b}"),
        "reasoning": f"By the Pythagorean theorem the hypotenuse {x}{y} = sqrt({a}^2 + {b}^2) = {c}.",
        "wrong_reasoning": f"Adding the two legs gives the hypotenuse {x}{y} = {a} + {b} = {a + b}.",
        "terse": f"The Pythagorean theorem gives the answer {c}.",
        "wrong_terse": f"Adding the legs gives the answer {a + b}.",
    }


def _circle(names: Sequence[str], numbers: Sequence[int]) -> dict:
    o, p, q = names
    r, c = numbers
    return {
        "statement": f"{o} is the center of the circle, {p} and {q} lie on it, {o}{p} = {r} and chord "
        f"{p}{q} = {c}.",
        "question": f"Find {o}{q}.",
        "answer": r,
        "wrong_answer": c,
        "facts": (f"{o} is the center of the circle", f"{o}{p} = {r}", f"{p}{q} = {c}"),
        "reasoning": f"{o}{q} and {o}{p} are both radii, so {o}{q} = {o}{p} = {r}.",
        "wrong_reasoning": f"I take {o}{q} to be as long as the chord, so {o}{q} = {p}{q} = {c}.",
        "terse": f"All radii are equal, so the answer is {r}.",
        "wrong_terse": f"It is as long as the chord, so the answer is {c}.",
    }


def _vertical_angles(names: Sequence[str], numbers: Sequence[int]) -> dict:
    p, q, r, s, t = names
    x, y = numbers
    return {
        "statement": f"Lines {p}{q} and {r}{s} intersect at {t}, angle {p}{t}{r} = {x} degrees and "
        f"angle {p}{t}{s} = {y} degrees.",
        "question": f"Find angle {q}{t}{s}.",
        "answer": x,
        "wrong_answer": y,
        "facts": (
            f"Lines {p}{q} and {r}{s} intersect at {t}",
            f"angle {p}{t}{r} = {x} degrees",
            f"angle {p}{t}{s} = {y} degrees",
        ),
        "reasoning": f"Angle {q}{t}{s} and angle {p}{t}{r} are vertical angles, so angle {q}{t}{s} = {x}.",
        "wrong_reasoning": f"I take angle {q}{t}{s} to equal angle {p}{t}{s}, so it is {y}.",
        "terse": f"Vertical angles are equal, so the answer is {x}.",
        "wrong_terse": f"Adjacent angles are equal, so the answer is {y}.",
    }


def _isosceles(names: Sequence[str], numbers: Sequence[int]) -> dict:
    x, y, z = names
    s, b = numbers
    return {
        "statement": f"Triangle {x}{y}{z} is isosceles with {x}{y} = {x}{z} = {s}, and angle "
        f"{x}{y}{z} = {b} degrees.",
        "question": f"Find angle {x}{z}{y}.",
        "answer": b,
        "wrong_answer": 180 - 2 * b,
        "facts": (
            f"Triangle {x}{y}{z} is isosceles with {x}{y} = {x}{z}",
            f"{x}{y} = {s}",
            f"angle {x}{y}{z} = {b} degrees",
        ),
        "reasoning": f"The base angles of an isosceles triangle are equal, so angle {x}{z}{y} = {b}.",
        "wrong_reasoning": f"I take angle {x}{z}{y} to be the apex angle, 180 - 2 * {b} = {180 - 2 * b}.",
        "terse": f"Base angles are equal, so the answer is {b}.",
        "wrong_terse": f"The apex angle gives the answer {180 - 2 * b}.",
    }


TEXTS: dict[str, Callable[[Sequence[str], Sequence[int]], dict]] = {
    "parallelogram": _parallelogram,
    "right_triangle": _right_triangle,
    "circle": _circle,
    "vertical_angles": _vertical_angles,
    "isosceles": _isosceles,
}
NAME_COUNTS = {"parallelogram": 4, "right_triangle": 3, "circle": 3, "vertical_angles": 5, "isosceles": 3}


def pythagorean_triples(limit: int = 100) -> list[tuple[int, int, int]]:
    """Every integer right triangle ``(a, b, c)`` with ``c <= limit``, both leg orders."""
    return [
        (a, b, c)
        for a in range(1, limit)
        for b in range(1, limit)
        if a != b and (c := math.isqrt(a * a + b * b)) * c == a * a + b * b and c <= limit
    ]


_TRIPLES = tuple(pythagorean_triples())


def draw_numbers(family: str, rng: random.Random) -> tuple[int, ...]:
    """Random numbers for one problem of ``family``."""
    if family == "parallelogram":
        a, b = rng.sample(range(3, 41), 2)
        return (a, b)
    if family == "right_triangle":
        return rng.choice(_TRIPLES)
    if family == "circle":
        r = rng.randint(3, 30)
        return (r, rng.choice([c for c in range(2, 2 * r) if c != r]))
    if family == "vertical_angles":
        x = rng.choice([v for v in range(20, 161) if v != 90])
        return (x, 180 - x)
    if family == "isosceles":
        return (rng.randint(3, 40), rng.choice([v for v in range(25, 86) if v != 60]))
    raise ValueError(f"unknown family {family!r}; families: {FAMILIES}")


def make_problem(
    family: str, names: Sequence[str], numbers: Sequence[int], *, id: int, split: str
) -> GeometryProblem:
    """The problem of ``family`` with these point names and numbers (pure)."""
    texts = TEXTS[family](names, numbers)
    return GeometryProblem(
        id=id,
        split=split,
        family=family,
        names=tuple(names),
        numbers=tuple(numbers),
        problem=f"<image>{texts['statement']} {texts['question']}",
        statement=texts["statement"],
        answer=str(texts["answer"]),
        wrong_answer=str(texts["wrong_answer"]),
        facts=tuple(texts["facts"]),
        reasoning=texts["reasoning"],
        wrong_reasoning=texts["wrong_reasoning"],
        terse=texts["terse"],
        wrong_terse=texts["wrong_terse"],
    )


def _distinct_from_decoys(names: Sequence[str]) -> bool:
    """No name is another's letter shifted by 13: the lexical judge's decoy of a fact shifts its point
    names so, and a problem holding both would state a decoy of its own facts."""
    shifted = {chr((ord(name) - ord("A") + 13) % 26 + ord("A")) for name in names}
    return not shifted & set(names)


def generate(
    n_train: int = 200,
    n_test: int = 50,
    *,
    seed: int = 0,
    families: Sequence[str] = FAMILIES,
    n_warmup: int = 0,
) -> dict[str, list[GeometryProblem]]:
    """``{"train": [...], "test": [...], "warmup": [...]}``: families in turn, each problem unique; a
    held-out problem shares neither its numbers nor its names with any training problem of its family,
    and a warm-up problem none with any held-out one (pure, seeded; train and test do not depend on
    ``n_warmup``)."""
    for family in families:
        if family not in TEXTS:
            raise ValueError(f"unknown family {family!r}; families: {FAMILIES}")
    rng = random.Random(seed)
    seen: set[tuple] = set()
    names_of: dict[str, dict[str, set[tuple[str, ...]]]] = {s: {f: set() for f in families} for s in SPLITS}
    numbers_of: dict[str, dict[str, set[tuple[int, ...]]]] = {s: {f: set() for f in families} for s in SPLITS}
    avoid = {"train": None, "test": "train", WARMUP: "test"}
    out: dict[str, list[GeometryProblem]] = {"train": [], "test": [], WARMUP: []}
    plan = (("train", n_train, 0), ("test", n_test, TEST_ID_OFFSET), (WARMUP, n_warmup, WARMUP_ID_OFFSET))
    for split, count, offset in plan:
        other = avoid[split]
        for index in range(count):
            family = families[index % len(families)]
            for _ in range(10_000):
                names = tuple(rng.sample(LETTERS, NAME_COUNTS[family]))
                numbers = draw_numbers(family, rng)
                if (family, names, numbers) in seen or not _distinct_from_decoys(names):
                    continue
                if other and (names in names_of[other][family] or numbers in numbers_of[other][family]):
                    continue
                break
            else:
                raise ValueError(f"cannot draw {count} distinct {split} problems of family {family!r}")
            seen.add((family, names, numbers))
            if split in names_of:
                names_of[split][family].add(names)
                numbers_of[split][family].add(numbers)
            out[split].append(make_problem(family, names, numbers, id=offset + index, split=split))
    return out


# --- figures ------------------------------------------------------------------------------------------


def _label(canvas: ImageDraw.ImageDraw, xy: tuple[float, float], text: str) -> None:
    canvas.text(xy, text, fill="black")


def _draw(problem: GeometryProblem, canvas: ImageDraw.ImageDraw) -> None:
    n = problem.names
    v = problem.numbers
    if problem.family == "parallelogram":
        pts = [(30, 150), (150, 150), (196, 56), (76, 56)]
        canvas.polygon(pts, outline="black", width=2)
        for (x, y), name, (dx, dy) in zip(pts, n, [(-14, 2), (4, 2), (4, -12), (-14, -12)], strict=True):
            _label(canvas, (x + dx, y + dy), name)
        _label(canvas, (84, 154), str(v[0]))
        _label(canvas, (178, 100), str(v[1]))
    elif problem.family == "right_triangle":
        pts = [(30, 40), (190, 164), (30, 164)]  # x, y, z (right angle at z)
        canvas.polygon(pts, outline="black", width=2)
        canvas.rectangle([(30, 150), (44, 164)], outline="black")
        for (x, y), name, (dx, dy) in zip(pts, n, [(-14, -8), (4, 2), (-14, 2)], strict=True):
            _label(canvas, (x + dx, y + dy), name)
        _label(canvas, (10, 100), str(v[0]))
        _label(canvas, (104, 168), str(v[1]))
    elif problem.family == "circle":
        cx, cy, rad = 112, 98, 72
        canvas.ellipse([(cx - rad, cy - rad), (cx + rad, cy + rad)], outline="black", width=2)
        p = (cx + rad, cy)
        angle = math.radians(70)
        q = (cx + rad * math.cos(angle), cy - rad * math.sin(angle))
        canvas.line([(cx, cy), p], fill="black", width=2)
        canvas.line([(cx, cy), q], fill="black", width=1)
        canvas.line([p, q], fill="black", width=1)
        _label(canvas, (cx - 12, cy + 2), n[0])
        _label(canvas, (p[0] + 4, p[1] - 6), n[1])
        _label(canvas, (q[0] + 2, q[1] - 14), n[2])
        _label(canvas, (cx + 30, cy + 4), str(v[0]))
        _label(canvas, ((p[0] + q[0]) / 2 + 6, (p[1] + q[1]) / 2 - 10), str(v[1]))
    elif problem.family == "vertical_angles":
        t = (112, 98)
        p, q, r, s = (20, 60), (204, 136), (40, 170), (184, 26)
        canvas.line([p, q], fill="black", width=2)
        canvas.line([r, s], fill="black", width=2)
        for (x, y), name in zip((p, q, r, s), n[:4], strict=True):
            _label(canvas, (x - 6, y + 4), name)
        _label(canvas, (t[0] - 4, t[1] + 8), n[4])
        _label(canvas, (70, 100), f"{v[0]}")
        _label(canvas, (100, 60), f"{v[1]}")
    elif problem.family == "isosceles":
        pts = [(112, 24), (36, 166), (188, 166)]  # apex x, base y, z
        canvas.polygon(pts, outline="black", width=2)
        for (x, y), name, (dx, dy) in zip(pts, n, [(-4, -14), (-14, 2), (4, 2)], strict=True):
            _label(canvas, (x + dx, y + dy), name)
        _label(canvas, (56, 88), str(v[0]))
        _label(canvas, (160, 88), str(v[0]))
        _label(canvas, (52, 150), f"{v[1]}")
    else:
        raise ValueError(f"unknown family {problem.family!r}")


def figure_png(problem: GeometryProblem) -> bytes:
    """The problem's figure as PNG bytes (white canvas, black lines, names and numbers)."""
    image = Image.new("RGB", CANVAS, "white")
    _draw(problem, ImageDraw.Draw(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- Geometry3K hub layout ----------------------------------------------------------------------------


def choices_of(problem: GeometryProblem) -> tuple[list[str], str]:
    """Four answer choices (the answer, the wrong answer, two more) in a fixed order, and the letter of
    the right one, as Geometry3K's ``choices`` and ``ground_truth`` columns hold them (pure)."""
    answer = int(problem.answer)
    options = [problem.answer, problem.wrong_answer]
    for extra in (answer + 3, answer * 2, answer + 7, answer + 11):
        if str(extra) not in options and len(options) < 4:
            options.append(str(extra))
    ordered = sorted(options, key=lambda text: (float(text), text))
    return ordered, "ABCD"[ordered.index(problem.answer)]


def source_records(problems: Sequence[GeometryProblem]) -> list[dict]:
    """Geometry3K-shaped records: images, problem, answer, id, choices, ground_truth."""
    records = []
    for problem in problems:
        choices, letter = choices_of(problem)
        records.append(
            {
                "images": [{"bytes": figure_png(problem), "path": None}],
                "problem": problem.problem,
                "answer": problem.answer,
                "id": problem.id,
                "choices": choices,
                "ground_truth": letter,
            }
        )
    return records


def annotation_records(problems: Sequence[GeometryProblem]) -> list[dict]:
    """The published annotation form: the source columns and ``<infoK>`` tagged ``visual_key_info``."""
    return [
        {
            "images": [{"bytes": figure_png(problem), "path": None}],
            "problem": problem.problem,
            "answer": problem.answer,
            "id": problem.id,
            "visual_key_info": problem.visual_key_info,
        }
        for problem in problems
    ]


def write_source(out: Path, problems: dict[str, list[GeometryProblem]]) -> tuple[Path, Path]:
    """Write ``out/geometry3k`` (hub layout; a non-empty warm-up set as ``validation``) and
    ``out/annotations.parquet`` (every split); return them."""
    from datasets import Dataset, Features, Image, List, Value

    base = {
        "images": List(Image()),
        "problem": Value("string"),
        "answer": Value("string"),
        "id": Value("int64"),
    }
    source_features = Features({**base, "choices": List(Value("string")), "ground_truth": Value("string")})
    source = Path(out) / "geometry3k"
    (source / "data").mkdir(parents=True, exist_ok=True)
    for split, items in problems.items():
        if split == WARMUP and not items:
            continue
        Dataset.from_list(source_records(items), features=source_features).to_parquet(
            str(source / "data" / f"{SOURCE_SPLIT[split]}-00000-of-00001.parquet")
        )
    annotations = Path(out) / "annotations.parquet"
    everything = [p for items in problems.values() for p in items]
    Dataset.from_list(
        annotation_records(everything), features=Features({**base, "visual_key_info": Value("string")})
    ).to_parquet(str(annotations))
    return source, annotations


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder for geometry3k/ and annotations.parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=200, help="training problems (default 200)")
    parser.add_argument("--test", type=int, default=50, help="held-out problems (default 50)")
    parser.add_argument("--warmup", type=int, default=0, help="warm-up problems (default 0)")
    args = parser.parse_args(argv)
    problems = generate(args.train, args.test, seed=args.seed, n_warmup=args.warmup)
    source, annotations = write_source(args.out, problems)
    logger.info(
        "wrote %d train and %d held-out problems to %s and %s",
        len(problems["train"]), len(problems["test"]), source, annotations,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
