"""Shared pieces of the benchmarks: the 1,024-response workload, prompt statistics, verl workers, output.

The workload imitates one GRPO step of the paper's size: ``problems`` Geometry3K-like problems with
``per_problem`` rollouts each (128 x 8 = 1,024 by default). Each problem has 2-8 visual annotations
(atomic facts); each rollout is a ``<think>...</think><answer>...</answer>`` response that restates
some of the facts, reasons in filler sentences, and boxes an answer (right about 60% of the time).
A few rollouts of a problem are exact copies of an earlier one (``duplicate_rate``, as happens with
short answers at temperature 1.0), so there are fewer distinct judge requests than responses.
Response lengths are log-normal around ``response_chars`` characters (default 1,200, about 300
tokens, a typical 7B geometry answer); everything is drawn from ``random.Random(seed)``.

Scoring goes through verl's own :class:`RewardLoopWorker` (built in-process, no Ray), whose
``compute_score_batch`` runs ``run_single`` for every sample of a chunk concurrently with
``asyncio.gather`` on the worker's event loop, exactly as verl's reward loop does; streaming
(per-sample) scoring calls its ``compute_score``, as verl's agent loop does for each finished rollout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perception_verl.data.annotations import parse_annotations
from perception_verl.judge.prompt import build_messages
from perception_verl.judge.sanitize import sanitize_response
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import (
    Sample,
    build_dataproto,
    compose_trainer_config,
    perception_reward_overrides,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

PairKey = tuple[tuple[str, ...], str]

_LETTERS = "ABCDEFGHJKLMNPQRSTWXYZ"
_VARIABLES = "xyzfabcdgkmnpt"
_FILLER = (
    "Let me look at the figure again and write down what it gives.",
    "We can set up an equation from the relation above and solve it step by step.",
    "Subtracting the same quantity from both sides keeps the equation balanced.",
    "Dividing both sides by the coefficient isolates the unknown.",
    "This value is positive, so it is a valid length for the segment.",
    "The sum of the interior angles of a triangle is 180 degrees.",
    "Opposite angles formed by two intersecting lines are congruent.",
    "Substituting back into the original expression checks the result.",
    "The question asks for the value rounded to the nearest tenth.",
    "Using the Pythagorean theorem on the right triangle gives the missing side.",
    "Corresponding angles are equal because the lines are parallel.",
    "So the two expressions must be equal, which gives a linear equation.",
    "Then I simplify the fraction and compare it with the answer choices.",
    "The area of a triangle is one half of the base times the height.",
    "Wait, I should double check the arithmetic before giving the answer.",
)


@dataclass(frozen=True)
class Problem:
    """One problem of the workload: its prompt, ground truth and visual annotations."""

    index: int
    prompt: str
    ground_truth: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    """The problems and their rollouts; ``samples[g * per_problem + j]`` is rollout j of problem g."""

    problems: tuple[Problem, ...]
    samples: tuple[Sample, ...]
    per_problem: int

    def groups(self) -> list[list[Sample]]:
        """The samples of each problem, in order."""
        k = self.per_problem
        return [list(self.samples[g * k : (g + 1) * k]) for g in range(len(self.problems))]


def _points(rng: random.Random, n: int) -> str:
    return "".join(rng.sample(_LETTERS, n))


def _fact(rng: random.Random) -> str:
    """One atomic statement about a figure, in the style of the published annotations."""
    kind = rng.randrange(8)
    if kind == 0:
        return f"{_points(rng, 4)} is a {rng.choice(('parallelogram', 'rectangle', 'rhombus', 'trapezoid'))}"
    if kind == 1:
        v = rng.choice(_VARIABLES)
        return f"{_points(rng, 2)} = {rng.randint(2, 9)}{v} - {rng.randint(1, 12)}"
    if kind == 2:
        return f"angle {_points(rng, 3)} = {rng.randint(20, 160)} degrees"
    if kind == 3:
        return f"{_points(rng, 2)} is parallel to {_points(rng, 2)}"
    if kind == 4:
        return f"the radius of circle {rng.choice(_LETTERS)} is {rng.randint(2, 30)}"
    if kind == 5:
        return f"{_points(rng, 2)} is perpendicular to {_points(rng, 2)}"
    if kind == 6:
        return f"{rng.choice(_LETTERS)} is the midpoint of {_points(rng, 2)}"
    return f"triangle {_points(rng, 3)} is isosceles"


def _response(rng: random.Random, problem: Problem, target_chars: int) -> str:
    mentioned = [f for f in problem.facts if rng.random() < 0.6]
    parts = [f"The figure shows that {fact}." for fact in mentioned]
    while sum(len(p) + 1 for p in parts) < target_chars:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(_FILLER))
    answer = problem.ground_truth if rng.random() < 0.6 else str(rng.randint(1, 200))
    body = " ".join(parts)
    return f"<think>\n{body}\n</think>\n<answer>\nSo the answer is \\boxed{{{answer}}}.\n</answer>"


def build_workload(
    problems: int = 128,
    per_problem: int = 8,
    *,
    seed: int = 0,
    response_chars: int = 1200,
    duplicate_rate: float = 0.06,
) -> Workload:
    """The deterministic benchmark batch (see the module docstring)."""
    if problems < 1 or per_problem < 1:
        raise ValueError(f"need problems >= 1 and per_problem >= 1, got {problems} and {per_problem}")
    rng = random.Random(seed)
    made: list[Problem] = []
    samples: list[Sample] = []
    for g in range(problems):
        wanted = rng.randint(2, 8)
        drawn: dict[str, None] = {}
        while len(drawn) < wanted:
            drawn[_fact(rng)] = None
        facts = tuple(drawn)
        problem = Problem(g, f"Problem {g}: find x in the figure. <image>", str(rng.randint(1, 200)), facts)
        made.append(problem)
        responses: list[str] = []
        for j in range(per_problem):
            if j and rng.random() < duplicate_rate:
                responses.append(rng.choice(responses))
                continue
            length = int(min(5500, max(300, rng.lognormvariate(math.log(response_chars), 0.35))))
            responses.append(_response(rng, problem, length))
        for text in responses:
            samples.append(
                Sample(problem.prompt, text, problem.ground_truth, list(problem.facts), uid=f"p{g}")
            )
    return Workload(tuple(made), tuple(samples), per_problem)


def add_workload_args(parser: argparse.ArgumentParser) -> None:
    """The workload options every benchmark takes."""
    parser.add_argument("--problems", type=int, default=128, help="problems in the batch")
    parser.add_argument("--per-problem", type=int, default=8, help="rollouts per problem")
    parser.add_argument("--response-chars", type=int, default=1200, help="median response length")
    parser.add_argument("--seed", type=int, default=0, help="workload seed")


def workload_from_args(args: argparse.Namespace) -> Workload:
    return build_workload(args.problems, args.per_problem, seed=args.seed, response_chars=args.response_chars)


def pair_key(sample: Sample, max_chars: int = 6000) -> PairKey:
    """What the SGLang judge deduplicates on: (annotations, sanitised response)."""
    return tuple(parse_annotations(sample.annotations)), sanitize_response(sample.response, max_chars)


def distinct_pairs(samples: Iterable[Sample]) -> int:
    """Distinct (annotations, response) pairs among samples that have annotations."""
    return len({pair_key(s) for s in samples if parse_annotations(s.annotations)})


def prompt_text(messages: Sequence[Mapping[str, str]]) -> str:
    """The judge prompt as sent: the messages' contents (system, then user) concatenated."""
    return "".join(str(m["content"]) for m in messages)


def our_prompt(sample: Sample, max_chars: int = 6000) -> str:
    facts, response = pair_key(sample, max_chars)
    return prompt_text(build_messages(facts, response))


def sent_prompt_groups(workload: Workload) -> list[list[str]]:
    """Per problem, the distinct prompts our judge sends (identical rollouts are asked once)."""
    return [list(dict.fromkeys(our_prompt(s) for s in group)) for group in workload.groups()]


def common_prefix_len(texts: Sequence[str]) -> int:
    return len(os.path.commonprefix(list(texts))) if texts else 0  # noqa: RUF071 (character-wise on purpose)


def shared_prefix_share(groups: Iterable[Sequence[str]]) -> float:
    """Share of all prompt characters that lie in their group's common prefix.

    For each group (one problem's prompts), the longest common prefix of its prompts counts once per
    prompt; the result is the sum of those over all groups divided by the total prompt characters.
    A group of one prompt shares nothing.
    """
    shared = total = 0
    for texts in groups:
        lcp = common_prefix_len(texts) if len(texts) > 1 else 0
        shared += lcp * len(texts)
        total += sum(len(t) for t in texts)
    return shared / total if total else 0.0


def tiny_tokenizer_dir(root: Path | None = None) -> Path:
    """Train and save the tiny test tokenizer (under ``root`` or a fresh temp folder)."""
    base = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="pv-bench-tok-"))
    return build_tiny_tokenizer(base / "tokenizer")


def check_round_trip(tokenizer: Any, workload: Workload) -> None:
    """The tiny tokenizer must give every response back unchanged, or pair counts would be off."""
    for sample in workload.samples:
        ids = tokenizer.encode(sample.response, add_special_tokens=False)
        if tokenizer.decode(ids, skip_special_tokens=True) != sample.response:
            raise RuntimeError(f"tiny tokenizer does not round-trip response of {sample.uid}")


def prepare(root: Path, workload: Workload) -> tuple[Path, Any, Any]:
    """The tiny tokenizer saved under ``root`` (checked to round-trip every response), the tokenizer,
    and the workload as one rollout-shaped ``DataProto``."""
    from transformers import AutoTokenizer

    tokenizer_dir = tiny_tokenizer_dir(root)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    check_round_trip(tokenizer, workload)
    return tokenizer_dir, tokenizer, build_dataproto(tokenizer, workload.samples)


def verl_config(tokenizer_path: Path, reward_kwargs: Mapping[str, Any] | None) -> Any:
    """verl's trainer config with our manager and ``reward_kwargs``, or verl's default (naive) when None."""

    if reward_kwargs is None:
        overrides = [f"actor_rollout_ref.model.path={tokenizer_path}"]
    else:
        overrides = perception_reward_overrides(tokenizer_path, reward_kwargs)
    return compose_trainer_config(overrides)


def reward_worker(config: Any) -> Any:
    """verl's ``RewardLoopWorker`` built in this process; call from the event loop that will use it."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    return RewardLoopWorker(config)


def sglang_kwargs(url: str, model: str, cap: int) -> dict[str, Any]:
    """``reward.reward_kwargs`` pointing our manager at an SGLang-shaped judge with client cap ``cap``."""
    return {"judge": "sglang", "judge_urls": url, "judge_model": model, "max_concurrency": cap}


def judge_config(tokenizer_dir: Path, server: Any, cap: int) -> Any:
    """verl's config with our manager judging through ``server`` (``url`` and ``model`` attributes)."""
    return verl_config(tokenizer_dir, sglang_kwargs(server.url, server.model, cap))


async def timed_batch(config: Any, data: Any) -> tuple[float, float, list[float]]:
    """(wall s, process CPU s, scores) of one ``compute_score_batch`` on a fresh reward-loop worker.

    What the manager holds is started before the clock starts (its judge's health check, its accuracy
    workers): verl starts them once per worker, not once per batch. They are closed afterwards.
    """
    worker = reward_worker(config)
    manager = worker.reward_manager
    if hasattr(manager, "start"):  # the judge and the accuracy workers, once per worker
        await manager.start()
    elif hasattr(manager, "judge"):
        await manager.judge()
    try:
        cpu = time.process_time()
        started = time.perf_counter()
        outputs = await worker.compute_score_batch(data)
        wall = time.perf_counter() - started
        return wall, time.process_time() - cpu, [float(o["reward_score"]) for o in outputs]
    finally:
        if hasattr(manager, "close"):
            await manager.close()


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    """A two-column table: label, value (floats with 3 decimals)."""
    emit(title)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        emit(f"  {label.ljust(width)}  {shown}")


def emit_json(payload: Mapping[str, Any]) -> None:
    emit(json.dumps(payload, sort_keys=True))
