"""The annotation pipeline: solve each problem k times, keep verified solutions, extract facts.

For each problem not already in the store:
1. solve: ``samples`` requests to the multimodal solver (images as data URLs);
2. filter: keep the replies whose answer verifies against the ground truth
   (:func:`perception_verl.rewards.accuracy.accuracy_reward` score 1.0, as in training);
3. extract: the text extractor turns the first verified reply (lowest sample index, so the
   choice does not depend on reply timing) into a JSON list of facts; an unusable reply is
   re-asked with the error, ``reask`` times, then the problem is recorded as failed.
Each problem ends as exactly one row, appended to the store as soon as it is known: an ``ok``
row with the annotations, or a ``failed`` row naming the stage and a reason. A bounded number of
problems is in flight at once, so an interrupted run loses little; the chat clients bound the
requests and retry transient faults. After a run that was not interrupted the store is rewritten
in input order, so resumed and uninterrupted runs give the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

from perception_verl.annotate.extract import ExtractionError, parse_fact_list
from perception_verl.annotate.prompts import (
    build_extract_messages,
    build_reask_messages,
    build_solve_messages,
)
from perception_verl.annotate.sources import Problem
from perception_verl.annotate.store import STATUS_FAILED, STATUS_OK, ResultStore, row_key
from perception_verl.client import ChatError
from perception_verl.rewards.accuracy import accuracy_reward

logger = logging.getLogger(__name__)

STAGE_SOLVE = "solve"
STAGE_FILTER = "filter"
STAGE_EXTRACT = "extract"


class ChatBackend(Protocol):
    """What the pipeline needs of :class:`perception_verl.client.chat.ChatClient`."""

    async def chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        extra_body: dict | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one run. ``temperature=None`` means 1.0 when ``samples > 1``, else 0.0 (greedy)."""

    solver_model: str
    extractor_model: str
    samples: int = 4
    temperature: float | None = None
    solve_max_tokens: int = 4096
    extract_max_tokens: int = 1024
    max_facts: int = 12
    reask: int = 1
    json_object: bool = False
    problems_in_flight: int = 8
    retry_failed: bool = False
    solver_extra_body: dict | None = None
    extractor_extra_body: dict | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.problems_in_flight < 1:
            raise ValueError(f"problems_in_flight must be >= 1, got {self.problems_in_flight}")
        if self.reask < 0:
            raise ValueError(f"reask must be >= 0, got {self.reask}")
        if self.max_facts < 1:
            raise ValueError(f"max_facts must be >= 1, got {self.max_facts}")

    @property
    def solve_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 1.0 if self.samples > 1 else 0.0


@dataclass(frozen=True)
class Outcome:
    """What happened to one problem: its store row and the counts behind it."""

    row: dict[str, Any]
    replies: int
    verified: int
    solver_requests: int
    extractor_requests: int
    reasks: int = 0

    @property
    def ok(self) -> bool:
        return self.row["status"] == STATUS_OK


@dataclass
class RunSummary:
    """Counts for one run (``solved``: problems with at least one solver reply; ``kept``: with at
    least one verified reply; ``extracted``: ``ok`` rows written; ``failed``: failed rows written)."""

    total: int = 0
    skipped: int = 0
    processed: int = 0
    solved: int = 0
    kept: int = 0
    extracted: int = 0
    failed: int = 0
    failed_by_stage: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    verified_samples: int = 0
    solver_requests: int = 0
    extractor_requests: int = 0
    reasks: int = 0
    elapsed_s: float = 0.0
    finalized: bool = False
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """Token usage the servers reported, by endpoint role: ``{"solver": {"prompt_tokens": ...}, ...}``."""

    def add(self, outcome: Outcome) -> None:
        self.processed += 1
        self.solved += outcome.replies > 0
        self.kept += outcome.verified > 0
        self.samples += outcome.replies
        self.verified_samples += outcome.verified
        self.solver_requests += outcome.solver_requests
        self.extractor_requests += outcome.extractor_requests
        self.reasks += outcome.reasks
        if outcome.ok:
            self.extracted += 1
        else:
            self.failed += 1
            stage = outcome.row["stage"]
            self.failed_by_stage[stage] = self.failed_by_stage.get(stage, 0) + 1

    def postfix(self) -> dict[str, int]:
        return {"solved": self.solved, "kept": self.kept, "extracted": self.extracted, "failed": self.failed}

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def failed_row(problem: Problem, stage: str, reason: str) -> dict[str, Any]:
    return {"id": problem.id, "status": STATUS_FAILED, "stage": stage, "reason": reason}


def ok_row(
    problem: Problem, annotations: list[str], solution: str, config: PipelineConfig, verified: int
) -> dict[str, Any]:
    split = {"split": problem.split} if problem.split is not None else {}
    return {
        "id": problem.id,
        **split,
        "problem": problem.question,
        "answer": problem.answer,
        "annotations": annotations,
        "solution": solution,
        "solver_model": config.solver_model,
        "extractor_model": config.extractor_model,
        "status": STATUS_OK,
        "samples": config.samples,
        "verified": verified,
    }


def _tally(labels: Sequence[str]) -> str:
    return ", ".join(f"{label} x{count}" for label, count in sorted(Counter(labels).items()))


async def solve(
    problem: Problem, solver: ChatBackend, config: PipelineConfig
) -> tuple[list[str | ChatError], int]:
    """``samples`` replies (text, or the ChatError of a request that failed for good) and requests sent."""
    messages = build_solve_messages(problem.question, problem.images)

    async def one() -> tuple[str | ChatError, int]:
        try:
            reply = await solver.chat(
                messages,
                max_tokens=config.solve_max_tokens,
                temperature=config.solve_temperature,
                extra_body=config.solver_extra_body,
            )
        except ChatError as error:
            logger.warning("problem %r: solve request failed: %s", problem.id, error)
            return error, error.attempts
        return reply.text, reply.requests

    results = await asyncio.gather(*(one() for _ in range(config.samples)))
    return [result for result, _ in results], sum(requests for _, requests in results)


async def extract(
    problem: Problem, solution: str, extractor: ChatBackend, config: PipelineConfig
) -> tuple[list[str] | str, int, int]:
    """Facts (or the failure reason as a string), requests sent and re-asks used."""
    messages = build_extract_messages(
        problem.question, solution, max_facts=config.max_facts, json_object=config.json_object
    )
    extra_body = dict(config.extractor_extra_body or {})
    if config.json_object:
        extra_body.setdefault("response_format", {"type": "json_object"})
    requests = 0
    for attempt in range(config.reask + 1):
        try:
            reply = await extractor.chat(
                messages, max_tokens=config.extract_max_tokens, temperature=0.0, extra_body=extra_body or None
            )
        except ChatError as error:
            logger.warning("problem %r: extraction request failed: %s", problem.id, error)
            return f"extraction request failed ({error.kind})", requests + error.attempts, attempt
        requests += reply.requests
        try:
            return parse_fact_list(reply.text, max_facts=config.max_facts), requests, attempt
        except ExtractionError as error:
            logger.info("problem %r: extraction attempt %d unusable: %s", problem.id, attempt + 1, error)
            last_error = str(error)
            messages = build_reask_messages(messages, reply.text, last_error, json_object=config.json_object)
    return f"malformed extraction after {config.reask + 1} attempts: {last_error}", requests, config.reask


async def annotate_problem(
    problem: Problem, solver: ChatBackend, extractor: ChatBackend, config: PipelineConfig
) -> Outcome:
    """Run the three stages for one problem; faults become a failed row, never an exception."""
    replies, solver_requests = await solve(problem, solver, config)
    texts = [(index, reply) for index, reply in enumerate(replies) if isinstance(reply, str)]
    errors = [reply.kind for reply in replies if isinstance(reply, ChatError)]
    if not texts:
        reason = f"all {len(replies)} solve requests failed ({_tally(errors)})"
        return Outcome(failed_row(problem, STAGE_SOLVE, reason), 0, 0, solver_requests, 0)
    results = await asyncio.gather(
        *(asyncio.to_thread(accuracy_reward, text, problem.answer) for _, text in texts)
    )
    verified = [index for (index, _), result in zip(texts, results, strict=True) if result.score == 1.0]
    if not verified:
        reason = f"none of {len(texts)} solutions verified ({_tally([r.reason for r in results])})"
        if errors:
            reason += f"; {len(errors)} solve requests failed ({_tally(errors)})"
        return Outcome(failed_row(problem, STAGE_FILTER, reason), len(texts), 0, solver_requests, 0)
    solution = dict(texts)[verified[0]]
    facts, extractor_requests, reasks = await extract(problem, solution, extractor, config)
    if isinstance(facts, str):
        row = failed_row(problem, STAGE_EXTRACT, facts)
    else:
        row = ok_row(problem, facts, solution, config, len(verified))
    return Outcome(row, len(texts), len(verified), solver_requests, extractor_requests, reasks)


async def _run_workers(count: int, work: Callable[[], Awaitable[None]]) -> None:
    tasks = [asyncio.create_task(work()) for _ in range(count)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def run_pipeline(
    problems: Sequence[Problem],
    store: ResultStore,
    solver: ChatBackend,
    extractor: ChatBackend,
    config: PipelineConfig,
    *,
    progress: bool = True,
) -> RunSummary:
    """Annotate every problem not yet in the (open) store, then rewrite the store in input order."""
    started = time.monotonic()
    done = store.done_keys(retry_failed=config.retry_failed)
    todo = [problem for problem in problems if row_key(problem.id) not in done]
    summary = RunSummary(total=len(problems), skipped=len(problems) - len(todo))
    logger.info("%d problems: %d already done, %d to annotate", len(problems), summary.skipped, len(todo))
    pending = iter(todo)
    bar = tqdm(total=len(todo), desc="annotate", unit="problem", disable=not progress, dynamic_ncols=True)

    async def worker() -> None:
        for problem in pending:
            outcome = await annotate_problem(problem, solver, extractor, config)
            store.append(outcome.row)
            summary.add(outcome)
            bar.set_postfix(summary.postfix(), refresh=False)
            bar.update(1)

    try:
        await _run_workers(min(config.problems_in_flight, max(1, len(todo))), worker)
    finally:
        bar.close()
        summary.elapsed_s = round(time.monotonic() - started, 3)
    store.finalize(problem.id for problem in problems)
    summary.finalized = True
    return summary
