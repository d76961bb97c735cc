"""Scripted responders for the loopback OpenAI-compatible server, for annotation-pipeline tests.

Each scripted problem carries a tag (``P3``) in its question text; the responders find the tag in
the request and answer deterministically from the script:

- :class:`ScriptedSolver` (multimodal endpoint) checks every request carries its images as base64
  PNG data URLs, records them, and answers in the think/answer/boxed format, with the right or a
  wrong boxed value as the problem's ``solver`` mode says (``"right"``, ``"wrong"``, or
  ``"alternate"``: wrong on the 1st, 3rd, ... request for that problem, right on the others);
- :class:`ScriptedExtractor` (text endpoint) answers with the problem's facts as a JSON array
  (``extractor="ok"``), never with JSON (``"malformed"``), or with JSON only when re-asked
  (``"fix_on_reask"``: the conversation already holds an assistant turn).
Both raise ``AssertionError`` on a request they do not expect (the server then answers 500).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TAG = re.compile(r"\bP\d+\b")
_DATA_URL = re.compile(r"^data:image/png;base64,([A-Za-z0-9+/=]+)$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ScriptedProblem:
    tag: str
    answer: str
    facts: tuple[str, ...]
    solver: str = "right"
    extractor: str = "ok"

    @property
    def question(self) -> str:
        return f"<image>{self.tag}: in the figure, find x."

    def solution(self, right: bool) -> str:
        value = self.answer if right else f"{self.answer}1"
        facts = "; ".join(self.facts)
        think = f"From the figure: {facts}. So x follows."
        return f"<think>\n{think}\n</think>\n<answer>\n\\boxed{{{value}}}\n</answer>"


def _find(script: Mapping[str, ScriptedProblem], text: str) -> ScriptedProblem:
    match = _TAG.search(text)
    assert match is not None and match.group(0) in script, f"no scripted problem named in {text[:200]!r}"
    return script[match.group(0)]


@dataclass
class ScriptedSolver:
    """Responder for the solver server; ``images`` maps tag -> decoded image bytes seen per request."""

    script: Mapping[str, ScriptedProblem]
    calls: Counter[str] = field(default_factory=Counter)
    images: dict[str, list[list[bytes]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        assert len(messages) == 1 and messages[0]["role"] == "user", "solver expects one user message"
        parts = messages[0]["content"]
        assert isinstance(parts, list), "solver request must be multimodal (a list of content parts)"
        texts = [part["text"] for part in parts if part.get("type") == "text"]
        urls = [part["image_url"]["url"] for part in parts if part.get("type") == "image_url"]
        assert texts and urls, "solver request needs a text part and at least one image_url part"
        images = []
        for url in urls:
            match = _DATA_URL.match(url)
            assert match is not None, f"image is not a base64 PNG data URL: {url[:60]!r}"
            data = base64.b64decode(match.group(1))
            assert data.startswith(PNG_MAGIC), "data URL does not hold a PNG"
            images.append(data)
        problem = _find(self.script, " ".join(texts))
        with self._lock:
            self.calls[problem.tag] += 1
            count = self.calls[problem.tag]
            self.images.setdefault(problem.tag, []).append(images)
        right = {"right": True, "wrong": False, "alternate": count % 2 == 0}[problem.solver]
        return problem.solution(right)


@dataclass
class ScriptedExtractor:
    """Responder for the extractor server."""

    script: Mapping[str, ScriptedProblem]
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        assert messages[0]["role"] == "system" and messages[1]["role"] == "user", (
            "extractor expects system+user"
        )
        assert all(isinstance(m["content"], str) for m in messages), "extractor requests are text only"
        problem = _find(self.script, messages[1]["content"])
        with self._lock:
            self.calls[problem.tag] += 1
        reasked = any(m["role"] == "assistant" for m in messages)
        if problem.extractor == "ok" or (problem.extractor == "fix_on_reask" and reasked):
            return "```json\n" + json.dumps(list(problem.facts)) + "\n```"
        return f"The solution uses these facts: {', '.join(problem.facts)}."


def make_script(
    count: int, *, wrong: tuple[int, ...] = (), malformed: tuple[int, ...] = ()
) -> dict[str, ScriptedProblem]:
    """``count`` problems P0..P{count-1}; those listed in ``wrong``/``malformed`` fail at that stage."""
    script = {}
    for index in range(count):
        tag = f"P{index}"
        script[tag] = ScriptedProblem(
            tag=tag,
            answer=str(index + 2),
            facts=(f"segment A{index}B{index} has length {index + 2}", f"angle C{index} is a right angle"),
            solver="wrong" if index in wrong else "right",
            extractor="malformed" if index in malformed else "ok",
        )
    return script
