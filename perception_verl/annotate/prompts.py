"""Chat messages for the two model calls of the pipeline: solving a problem and extracting facts.

The solve prompt matches the policy's instruction (reason in ``<think>``, answer in ``<answer>``
with a ``\\boxed{}`` final answer), so distilled solutions look like what the reward expects.
The extraction prompt asks a text-only model for a JSON array of short, atomic statements about
what the figure shows, taken from a verified solution.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

IMAGE_PLACEHOLDER = re.compile(r"\s*<image>\s*")

SOLVE_INSTRUCTION = (
    "Solve the problem using the figure. First think it through step by step inside "
    "<think> </think> tags, describing what you read from the figure. Then give your final answer "
    "inside <answer> </answer> tags, with the final value written in \\boxed{}."
)

EXTRACT_SYSTEM = """\
You turn a worked solution of a geometry or diagram problem into reference facts about its figure.

Write the facts about the image that the solution reads from the figure and relies on:
- one atomic statement per fact, checkable by looking at the figure (a shape, a label, a marked
  length or angle, parallel or perpendicular sides, a point lying on a line, a tick or arc mark);
- each fact self-contained: name the points, segments or values it is about;
- no reasoning steps, no values the solution computes, no final answer, no facts that only
  restate the question text;
- usually 2 to 8 facts, never more than {max_facts}.

{output_rule}"""

_OUTPUT_ARRAY = (
    'Reply with only a JSON array of strings, for example ["ABCD is a rectangle", '
    '"AB = 6", "angle ABE is 30 degrees"], and nothing else.'
)
_OUTPUT_OBJECT = (
    'Reply with only a JSON object whose "facts" key holds an array of strings, for example '
    '{"facts": ["ABCD is a rectangle", "AB = 6", "angle ABE is 30 degrees"]}, and nothing else.'
)

_MIME_BY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_mime(data: bytes) -> str:
    """Return the MIME type of encoded image bytes (PNG, JPEG, GIF, WebP, BMP) or raise ValueError."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MIME_BY_MAGIC:
        if data.startswith(magic):
            return mime
    raise ValueError(
        f"unrecognised image encoding (first bytes {data[:8]!r}); expected PNG, JPEG, GIF, WebP or BMP"
    )


def image_data_url(data: bytes) -> str:
    """Encode image bytes as a ``data:`` URL for an OpenAI-compatible ``image_url`` part."""
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def question_text(question: str) -> str:
    """The question without ``<image>`` placeholders (the images travel as separate parts)."""
    return IMAGE_PLACEHOLDER.sub(" ", question).strip()


def build_solve_messages(question: str, images: Sequence[bytes]) -> list[dict]:
    """One user message: the images as data URLs, then the question and the answer-format instruction."""
    parts: list[dict] = [
        {"type": "image_url", "image_url": {"url": image_data_url(image)}} for image in images
    ]
    parts.append({"type": "text", "text": f"{question_text(question)}\n\n{SOLVE_INSTRUCTION}"})
    return [{"role": "user", "content": parts}]


def build_extract_messages(
    question: str, solution: str, *, max_facts: int, json_object: bool = False
) -> list[dict[str, str]]:
    """System instructions, then the question and the verified solution to extract facts from."""
    system = EXTRACT_SYSTEM.format(
        max_facts=max_facts, output_rule=_OUTPUT_OBJECT if json_object else _OUTPUT_ARRAY
    )
    user = f"Question:\n{question_text(question)}\n\nSolution:\n{solution.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def build_reask_messages(
    messages: Sequence[dict[str, str]], reply: str, error: str, *, json_object: bool = False
) -> list[dict[str, str]]:
    """The extraction conversation extended with the rejected reply and what was wrong with it."""
    rule = _OUTPUT_OBJECT if json_object else _OUTPUT_ARRAY
    feedback = f"That reply could not be used: {error}. {rule}"
    return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": feedback}]
