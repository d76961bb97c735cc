"""An SGLang-shaped judge server for tests: the loopback server answering with lexical verdicts.

The responder reads the judge prompt back (:func:`split_user_message` on the first user message),
decides each fact with :func:`lexical_verdicts`, and answers ``<info1>1</info1> <info2>0</info2>``
as a well-behaved judge model would. Requests carrying SGLang's ``regex`` field are answered
with text that matches it in full (as constrained decoding guarantees), else the server fails loudly.
"""

from __future__ import annotations

import re
from typing import Any

from perception_verl.judge.lexical import lexical_verdicts
from tests.support.loopback import LoopbackServer
from tests.support.prompt_reader import split_user_message

JUDGE_MODEL = "Qwen/Qwen2.5-32B-Instruct-AWQ"


def format_verdicts(verdicts: tuple[int, ...] | list[int]) -> str:
    return " ".join(f"<info{k}>{v}</info{k}>" for k, v in enumerate(verdicts, start=1))


def judge_responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Lexical verdicts for the facts and response in the judge prompt of ``messages``."""
    user = next(m for m in messages if m.get("role") == "user")
    annotations, response = split_user_message(str(user["content"]))
    answer = format_verdicts(lexical_verdicts(annotations, response))
    pattern = body.get("regex")
    if pattern and re.fullmatch(pattern, answer) is None:
        raise AssertionError(f"answer {answer!r} does not match the requested regex {pattern!r}")
    return answer


def fake_sglang(**switches: Any) -> LoopbackServer:
    """A (not yet started) loopback judge server; ``switches`` are :class:`LoopbackServer` options."""
    switches.setdefault("model", JUDGE_MODEL)
    return LoopbackServer(judge_responder, **switches)
