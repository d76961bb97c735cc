"""A small sample dataset and sample responses of known quality, for the CPU smoke run.

Three Geometry3K-style problems with figures drawn by PIL, each with its answer and the visual
annotations a judge checks. :func:`write_sample_dataset` writes them as verl rows (the same schema
``data_prep/build_geometry3k.py`` writes). :func:`sample_responses` gives, per problem, one response
per quality level, so a GRPO group shows how the reward ranks them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

QUALITY_LEVELS = ("perceptive", "correct", "wrong", "repetitive", "malformed")


@dataclass(frozen=True)
class SampleProblem:
    """A problem with its figure, answer, a wrong answer and its visual annotations."""

    id: str
    problem: str
    answer: str
    wrong_answer: str
    annotations: tuple[str, ...]
    reasoning: str
    draw: Callable[[ImageDraw.ImageDraw], None]


@dataclass(frozen=True)
class SampleResponse:
    """One policy response of a known quality level for a problem."""

    problem_id: str
    level: str
    text: str


def _right_triangle(canvas: ImageDraw.ImageDraw) -> None:
    canvas.polygon([(30, 170), (190, 170), (30, 50)], outline="black", width=2)
    canvas.rectangle([(30, 156), (44, 170)], outline="black")
    labels = (((18, 172), "C"), ((194, 172), "B"), ((18, 38), "A"), ((8, 105), "6"), ((105, 176), "8"))
    for xy, text in labels:
        canvas.text(xy, text, fill="black")


def _parallelogram(canvas: ImageDraw.ImageDraw) -> None:
    canvas.polygon([(40, 150), (160, 150), (200, 60), (80, 60)], outline="black", width=2)
    for xy, text in (
        ((28, 152), "J"),
        ((164, 152), "K"),
        ((204, 52), "L"),
        ((68, 52), "M"),
        ((84, 156), "3f - 6"),
        ((120, 40), "2f + 4"),
    ):
        canvas.text(xy, text, fill="black")


def _circle(canvas: ImageDraw.ImageDraw) -> None:
    canvas.ellipse([(40, 30), (180, 170)], outline="black", width=2)
    canvas.line([(110, 100), (180, 100)], fill="black", width=2)
    canvas.text((100, 104), "O", fill="black")
    canvas.text((140, 86), "5", fill="black")


PROBLEMS = (
    SampleProblem(
        id="smoke-1",
        problem="<image>In the figure, find AB.",
        answer="10",
        wrong_answer="14",
        annotations=("Triangle ABC has a right angle at C", "AC = 6", "BC = 8"),
        reasoning="By the Pythagorean theorem AB = sqrt(6^2 + 8^2) = sqrt(100) = 10.",
        draw=_right_triangle,
    ),
    SampleProblem(
        id="smoke-2",
        problem="<image>Find f.",
        answer="10",
        wrong_answer="2",
        annotations=("JKLM is a parallelogram", "JK = 3f - 6", "ML = 2f + 4"),
        reasoning="Opposite sides of a parallelogram are equal, so 3f - 6 = 2f + 4 and f = 10.",
        draw=_parallelogram,
    ),
    SampleProblem(
        id="smoke-3",
        problem="<image>Find the area of circle O. Round to the nearest tenth.",
        answer="78.5",
        wrong_answer="31.4",
        annotations=("O is the center of the circle", "The radius of circle O is 5"),
        reasoning="The area is pi r^2 = 25 pi, about 78.5.",
        draw=_circle,
    ),
)


def figure_png(problem: SampleProblem) -> bytes:
    """The problem's figure as PNG bytes (white 220x200 canvas, black lines and labels)."""
    image = Image.new("RGB", (220, 200), "white")
    problem.draw(ImageDraw.Draw(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sample_rows(problems: Sequence[SampleProblem] = PROBLEMS, split: str = "train") -> list[dict]:
    """verl rows for ``problems`` (prompt with ``<image>``, PNG image, ground truth, annotations)."""
    from perception_verl.data.images import decode_image
    from perception_verl.data.schema import DEFAULT_INSTRUCTION, ConvertedProblem, build_row

    rows = []
    for index, problem in enumerate(problems):
        image = decode_image(figure_png(problem))
        converted = ConvertedProblem(
            split=split,
            index=index,
            id=problem.id,
            problem=problem.problem,
            answer=problem.answer,
            images=(image.png,),
            image_hashes=(image.pixel_hash,),
        )
        rows.append(build_row(converted, problem.annotations, DEFAULT_INSTRUCTION))
    return rows


def write_sample_dataset(path: Path, problems: Sequence[SampleProblem] = PROBLEMS) -> Path:
    """Write the sample rows as a verl parquet at ``path`` and return it."""
    from perception_verl.data.schema import ROW_SCHEMA
    from perception_verl.data.writer import write_outputs_atomically

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_outputs_atomically({path: sample_rows(problems, split=path.stem)}, ROW_SCHEMA)
    return path


def _formatted(think: str, answer: str) -> str:
    return f"<think>\n{think}\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>"


def sample_responses(problem: SampleProblem) -> list[SampleResponse]:
    """One response per :data:`QUALITY_LEVELS` entry for ``problem``.

    - perceptive: states every visual fact, reasons, right answer, right format;
    - correct: right answer and format, but says nothing about the figure;
    - wrong: states one fact, wrong answer;
    - repetitive: repeats a fact over and over (the reward-hacking route the repetition penalty stops);
    - malformed: right answer in a box, but without the think/answer tags.
    """
    facts = ". ".join(problem.annotations) + "."
    first = problem.annotations[0]
    texts = {
        "perceptive": _formatted(f"The figure shows: {facts} {problem.reasoning}", problem.answer),
        "correct": _formatted(f"Applying the usual formula gives {problem.answer}.", problem.answer),
        "wrong": _formatted(f"{first}. I estimate the value from the picture.", problem.wrong_answer),
        "repetitive": _formatted(" ".join([f"{first}."] * 30), problem.wrong_answer),
        "malformed": f"The answer is \\boxed{{{problem.answer}}}",
    }
    return [SampleResponse(problem.id, level, texts[level]) for level in QUALITY_LEVELS]
