"""An LLM answer extractor (the paper used a 72B judge to extract answers), over the shared chat client.

The judge is shown the question (with its choices) and the model's response and asked for the final
answer only; the reply is then checked by the same rules as a boxed answer
(:func:`perception_verl.evaluation.answers.check_extracted`). A request that fails for good leaves the
row unscored with the failure kind, never scored wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.errors import ChatError

SYSTEM = (
    "You read a student's solution to a math problem and report the final answer it gives. "
    "Reply with the final answer only, nothing else. For a multiple-choice question reply with the "
    "option letter. If the solution gives no final answer, reply NONE."
)
MAX_RESPONSE_CHARS = 8000
NO_ANSWER = "NONE"


@dataclass(frozen=True)
class Extraction:
    """The judge's answer text, or ``None`` with the failure kind."""

    text: str | None
    failure: str | None = None


def messages(question: str, response: str) -> list[dict[str, str]]:
    """The chat messages for one extraction (pure); the response is cut to its last characters."""
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": (
                f"Question:\n{question}\n\nSolution:\n{response[-MAX_RESPONSE_CHARS:]}\n\nFinal answer:"
            ),
        },
    ]


def parse_reply(text: str) -> str:
    """The extracted answer from a judge reply (``""`` for NONE)."""
    answer = text.strip().strip("`").strip()
    return "" if answer.upper() == NO_ANSWER else answer


class AnswerJudge:
    """Extract final answers with an OpenAI-compatible server through :class:`ChatClient`."""

    def __init__(self, config: ChatClientConfig, *, max_tokens: int = 64) -> None:
        self.client = ChatClient(config)
        self.max_tokens = max_tokens

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    async def extract(self, question: str, response: str) -> Extraction:
        try:
            reply = await self.client.chat(messages(question, response), max_tokens=self.max_tokens)
        except ChatError as error:
            return Extraction(None, error.kind)
        return Extraction(parse_reply(reply.text))

    async def extract_all(
        self, items: Sequence[tuple[str, str]], *, on_done: Callable[[], None] | None = None
    ) -> list[Extraction]:
        """Extract every ``(question, response)`` concurrently (bounded by the client), in order."""

        async def one(question: str, response: str) -> Extraction:
            result = await self.extract(question, response)
            if on_done is not None:
                on_done()
            return result

        return list(await asyncio.gather(*(one(q, r) for q, r in items)))

    def metrics(self) -> dict[str, int]:
        return self.client.metrics()
