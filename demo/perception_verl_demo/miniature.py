"""The miniature Perception-R1 experiment's own steps (``recipes/run_miniature_cpu.sh`` runs them).

- ``data OUT``: the procedural geometry problems (:mod:`perception_verl_demo.geometry`) in Geometry3K's
  hub layout with their annotations (``--warmup W`` more problems as the ``validation`` split), plus
  ``problems.json`` (every problem's fields, for the warm-up); ``perception-verl build-geometry3k`` then
  converts them like any Geometry3K source.
- ``policy OUT --data-dir D``: the twin's tiny Qwen2.5-VL (:mod:`perception_verl_demo.vl_policy`,
  ``--layers`` deep), taught to copy (``--copy-steps``) and warmed on the two response modes in the
  warm-up mix (:mod:`perception_verl_demo.modes`) over the training and warm-up problems.
- ``step0 MODEL --data-dir D``: samples the warmed policy on training problems and prints the step-0
  check (format, perceptive share, accuracy by mode within problems); exits 1 when it fails.
- ``results OUT_DIR``: gathers the evaluation (scores, perception labels, McNemar comparisons), the
  step-0 check and verl's per-step rollouts into ``results.json``, ``report.md`` and the overlay plot.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ARMS = ("base", "acc_only", "perception_r1")
TRAINED_ARMS = ("acc_only", "perception_r1")
COMPARISONS = (("perception_r1", "acc_only"), ("acc_only", "base"), ("perception_r1", "base"))
ARM_TITLES = {"base": "base policy", "acc_only": "accuracy-only", "perception_r1": "Perception-R1"}
PROBLEMS_FILE = "problems.json"
COPY_CHECK_TOKENS = 64
"""Enough for the longest statement clause after the forced opener."""


# --- data ---------------------------------------------------------------------------------------------


def write_data(out: Path, *, seed: int, n_train: int, n_test: int, n_warmup: int = 0) -> dict[str, Any]:
    """The hub-layout source (the warm-up problems as its ``validation`` split), the annotations and
    ``problems.json`` under ``out``."""
    from perception_verl_demo.geometry import generate, write_source

    problems = generate(n_train, n_test, seed=seed, n_warmup=n_warmup)
    source, annotations = write_source(out, problems)
    manifest = {split: [asdict(p) for p in items] for split, items in problems.items()}
    (out / PROBLEMS_FILE).write_text(json.dumps({"seed": seed, **manifest}, indent=1) + "\n")
    return {
        "source": str(source),
        "annotations": str(annotations),
        "train": n_train,
        "test": n_test,
        "warmup": n_warmup,
    }


def read_problems(path: Path) -> dict[str, list]:
    """``problems.json`` back as :class:`~perception_verl_demo.geometry.GeometryProblem` lists."""
    from perception_verl_demo.geometry import GeometryProblem

    data = json.loads(path.read_text())

    def problem(fields: dict) -> GeometryProblem:
        tuples = ("names", "numbers", "facts")
        return GeometryProblem(**{k: tuple(v) if k in tuples else v for k, v in fields.items()})

    splits = ("train", "test", "warmup")
    return {split: [problem(fields) for fields in data.get(split, [])] for split in splits}


def read_rows(parquet: Path) -> dict[int, dict]:
    """verl rows of a built parquet keyed by the problem id: prompt and image bytes."""
    import pyarrow.parquet as pq

    rows = pq.read_table(str(parquet), columns=["prompt", "images", "extra_info"]).to_pylist()
    return {
        int(row["extra_info"]["id"]): {
            "prompt": list(row["prompt"]),
            "images": [image["bytes"] for image in row["images"]],
        }
        for row in rows
    }


# --- policy -------------------------------------------------------------------------------------------


def build_warmed_policy(
    out: Path,
    data_dir: Path,
    problems_file: Path,
    *,
    mix: str,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    layers: int | None = None,
    copy_steps: int = 0,
    copy_lr: float = 1e-3,
    copy_target: float = 0.0,
    copy_anneal: int = 0,
    copy_small_alphabet: float = 0.0,
) -> dict[str, Any]:
    """Build the tiny VL policy (tokenizer trained on the prompts and responses), teach it to copy
    (``copy_steps``, :func:`~perception_verl_demo.fast_vl.pretrain_copy`), then warm it on the mode mix
    over the training and warm-up problems (``warmup.parquet`` beside ``train.parquet`` when built)."""
    from perception_verl_demo.fast_vl import pretrain_copy, warm_up_cached
    from perception_verl_demo.modes import parse_mix, warmup_responses
    from perception_verl_demo.vl_policy import WarmupExample, build_vl_policy

    split = read_problems(problems_file)
    problems = split["train"] + split["warmup"]
    rows = read_rows(data_dir / "train.parquet")
    if split["warmup"]:
        rows.update(read_rows(data_dir / "warmup.parquet"))
    responses = warmup_responses(problems, parse_mix(mix))
    missing = sorted({r.problem_id for r in responses} - set(rows))
    if missing:
        raise ValueError(f"{data_dir} has no row for problem id(s) {missing[:5]}")
    corpus = [m["content"] for row in rows.values() for m in row["prompt"]] + [r.text for r in responses]
    out.mkdir(parents=True, exist_ok=True)
    built = build_vl_policy(out, corpus, seed=seed, layers=layers)
    copied: dict[str, Any] = {}
    if copy_steps:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(out))
        ids = {i for text in corpus for i in tokenizer(text, add_special_tokens=False)["input_ids"]}
        copied = pretrain_copy(
            out,
            sorted(ids),
            steps=copy_steps,
            lr=copy_lr,
            target_loss=copy_target,
            anneal_steps=copy_anneal,
            small_alphabet=copy_small_alphabet,
            seed=seed,
        )
        logger.info("copy pre-training: %s", copied)
    examples = [
        WarmupExample(rows[r.problem_id]["prompt"], rows[r.problem_id]["images"], r.text, r.weight)
        for r in responses
    ]
    summary = warm_up_cached(out, examples, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
    summary = {**built, **copied, **summary, "layers": layers, "mix": mix, "seed": seed}
    (out / "warmup.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --- step-0 check -------------------------------------------------------------------------------------


def step0(
    model: Path,
    data_dir: Path,
    problems_file: Path,
    *,
    problems: int,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    copy_split: str | None = "test",
) -> dict[str, Any]:
    """Sample ``n`` responses to each of the first ``problems`` training problems and check them; then
    the :func:`copy_check` on ``copy_split`` (None: skip it)."""
    from perception_verl_demo.fast_vl import Sampler
    from perception_verl_demo.modes import score_sample, step0_check

    sampler = Sampler(model)
    chosen = read_problems(problems_file)["train"][:problems]
    rows = read_rows(data_dir / "train.parquet")
    scored = []
    for index, problem in enumerate(chosen):
        row = rows[problem.id]
        texts = sampler.sample(
            row["prompt"], row["images"], n=n, temperature=temperature,
            max_new_tokens=max_new_tokens, seed=seed + index,
        )  # fmt: skip
        scored += [score_sample(problem, text) for text in texts]
        logger.info("step-0 sampling: problem %d/%d", index + 1, len(chosen))
    report = step0_check(scored)
    report["settings"] = {"problems": len(chosen), "n": n, "temperature": temperature, "seed": seed}
    if copy_split:
        report["copy_check"] = copy_check(
            sampler, data_dir, problems_file, split=copy_split, max_new_tokens=COPY_CHECK_TOKENS
        )
    return report


def copy_check(sampler: Any, data_dir: Path, problems_file: Path, *, split: str, max_new_tokens: int) -> dict:
    """Greedy answers to every problem of ``split`` with the perceptive opener forced: in how many the
    policy then states every annotated fact. The held-out split's rate bounds what the evaluation's
    perception label can reach by moving the policy into the perceptive mode; it trains nothing."""
    from perception_verl_demo.modes import perceptive_prefix, states_facts

    chosen = read_problems(problems_file)[split]
    rows = read_rows(data_dir / f"{split}.parquet")
    stated = 0
    for problem in chosen:
        row = rows[problem.id]
        (text,) = sampler.sample(
            row["prompt"], row["images"], n=1, temperature=0, max_new_tokens=max_new_tokens,
            prefix=perceptive_prefix(problem),
        )  # fmt: skip
        stated += states_facts(text, problem.facts)
    logger.info("copy check: %d of %d %s problems state every fact", stated, len(chosen), split)
    return {"split": split, "problems": len(chosen), "states_every_fact": stated,
            "rate": stated / len(chosen) if chosen else 0.0}  # fmt: skip


def step0_failures(report: Mapping[str, Any], *, min_format: float = 0.8) -> list[str]:
    """Why the step-0 check fails (empty: it passes)."""
    failures = []
    if report["format"] < min_format:
        failures.append(f"format {report['format']:.3f} < {min_format}")
    if not 0 < report["perceptive_share"] < 0.5:
        failures.append(f"perceptive share {report['perceptive_share']:.3f} is not in (0, 0.5)")
    if report["tied"]:
        failures.append(f"accuracy is tied to the mode within problems (CMH p {report['cmh']['p']:.4g})")
    return failures


# --- results ------------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def arm_scores(eval_dir: Path) -> dict[str, Any]:
    """One evaluated arm: accuracy, perception rate and format over the held-out problems, and the
    step of the dump (the checkpoint's step, 0 for the base policy)."""
    from perception_verl.rewards.format import format_reward

    results = read_jsonl(eval_dir / "scored" / "results.jsonl")
    labels = read_jsonl(eval_dir / "perception_labels.jsonl")
    judged = [row for row in labels if row.get("correct") is not None]
    steps = sorted({row["step"] for row in results if row.get("step") is not None})
    return {
        "problems": len(results),
        "accuracy": sum(bool(row["correct"]) for row in results) / len(results),
        "perception_rate": sum(bool(row["correct"]) for row in judged) / len(judged) if judged else None,
        "perception_labelled": len(judged),
        "format": sum(format_reward(row["response"]) for row in results) / len(results),
        "dump_step": steps[0] if len(steps) == 1 else steps,
    }


def comparison(path: Path) -> dict[str, Any]:
    """``eval-compare --json`` output reduced to b, c and the exact p per measure."""
    data = json.loads(path.read_text())
    return {
        measure: {
            "b": result["b_a_only"],
            "c": result["c_b_only"],
            "p_exact": result["p_exact"],
            "n_pairs": result["n_pairs"],
        }
        for measure, result in data.items()
    }


def rollout_curves(rollout_dir: Path, problems_file: Path) -> dict[str, list[tuple[int, float]]]:
    """Per training step, from verl's rollout dumps (``input``, ``output``, ``gts`` per rollout): the
    share in the perceptive mode, the share stating every fact (lexical judge), accuracy and format."""
    from perception_verl.rewards.accuracy import accuracy_reward
    from perception_verl.rewards.format import format_reward
    from perception_verl_demo.modes import detect_mode, states_facts

    names = ("perceptive_mode", "states_every_fact", "accuracy", "format")
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
    if not rollout_dir.is_dir():
        return curves
    problems = read_problems(problems_file)["train"]
    steps = sorted(int(p.stem) for p in rollout_dir.glob("*.jsonl") if p.stem.isdigit())
    for step in steps:
        rows = read_jsonl(rollout_dir / f"{step}.jsonl")
        sums = dict.fromkeys(names, 0.0)
        for row in rows:
            output = str(row.get("output", ""))
            problem = next((p for p in problems if p.statement in str(row.get("input", ""))), None)
            facts = problem.facts if problem is not None else ()
            sums["perceptive_mode"] += detect_mode(output, facts) == "perceptive"
            sums["states_every_fact"] += bool(facts) and states_facts(output, facts)
            sums["accuracy"] += accuracy_reward(output, str(row.get("gts", ""))).score
            sums["format"] += format_reward(output)
        if rows:
            for name in names:
                curves[name].append((step, sums[name] / len(rows)))
    return curves


def comparisons_of(trained: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The McNemar comparisons a run with these trained arms has (pure)."""
    present = {"base", *trained}
    return tuple((a, b) for a, b in COMPARISONS if a in present and b in present)


def check_trained(trained: Sequence[str]) -> tuple[str, ...]:
    """``trained`` in the canonical order; raises ValueError on an unknown, repeated or empty list."""
    unknown = sorted(set(trained) - set(TRAINED_ARMS))
    if not trained or unknown or len(set(trained)) != len(trained):
        raise ValueError(f"trained arms: one or both of {TRAINED_ARMS}, each once; got {list(trained)}")
    return tuple(arm for arm in TRAINED_ARMS if arm in trained)


def target(arms: Mapping[str, Any], comparisons: Mapping[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """The issue's target, each clause checked on the numbers (pure). It needs both trained arms; a run
    with one (the CI chain) checks none and says so: ``holds`` is None and ``unchecked`` names why."""
    if not all(arm in arms for arm in ARMS):
        missing = [arm for arm in ARMS if arm not in arms]
        return {"clauses": {}, "holds": None, "unchecked": f"needs every arm; this run has no {missing}"}
    pr, ao, base = arms["perception_r1"], arms["acc_only"], arms["base"]
    perception = comparisons["perception_r1_vs_acc_only"]["perception"]
    accuracy = comparisons["perception_r1_vs_acc_only"]["accuracy"]
    vs_base = comparisons["perception_r1_vs_base"]["accuracy"]
    clauses = {
        "perception_r1_perception_rate_at_least_0.8": (pr["perception_rate"] or 0) >= 0.8,
        "perception_r1_above_acc_only_mcnemar_p_lt_0.05": (
            perception["b"] > perception["c"] and perception["p_exact"] < alpha
        ),
        "acc_only_perception_not_above_base": (ao["perception_rate"] or 0) <= (base["perception_rate"] or 0),
        "perception_r1_accuracy_not_significantly_below_acc_only": not (
            accuracy["c"] > accuracy["b"] and accuracy["p_exact"] < alpha
        ),
        "perception_r1_accuracy_not_significantly_below_base": not (
            vs_base["c"] > vs_base["b"] and vs_base["p_exact"] < alpha
        ),
    }
    return {"clauses": clauses, "holds": all(clauses.values())}


def plot_overlay(curves: Mapping[str, Mapping[str, list[tuple[int, float]]]], path: Path, title: str) -> None:
    """One figure: each metric a panel, each arm a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(curves.values())))
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), dpi=110)
    try:
        for axis, name in zip(axes, names, strict=True):
            for arm, series in curves.items():
                points = series.get(name) or []
                if points:
                    axis.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=2.5,
                              linewidth=1.5, label=ARM_TITLES.get(arm, arm))  # fmt: skip
            axis.set_title(name.replace("reward/", "").replace("/mean", ""), fontsize=10)
            axis.set_xlabel("step")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=7)
        figure.suptitle(title, fontsize=11)
        figure.tight_layout()
        figure.savefig(str(path), format="png")
    finally:
        plt.close(figure)


def metric_curves(metrics: Path) -> dict[str, list[tuple[int, float]]]:
    """The reward components per step from verl's file-logger metrics (eval-report's reader)."""
    from perception_verl.evaluation.report import read_metrics

    series = read_metrics(metrics)
    keys = ("reward/score/mean", "reward/accuracy/mean", "reward/perception/mean", "reward/format/mean")
    return {key: series.get(key, []) for key in keys}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if value >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def render_report(results: Mapping[str, Any]) -> str:
    """``report.md`` of one miniature run (pure)."""
    arms, comparisons = results["arms"], results["comparisons"]
    trained = [arm for arm in TRAINED_ARMS if arm in arms]
    lines = [
        f"# Perception-R1 in miniature (seed {results['seed']})",
        "",
        f"Held-out problems: {arms['base']['problems']}; greedy, one answer per problem and arm. "
        f"Perception judge for the labels: `{results['judge']}` (label: every annotated fact stated).",
        "",
        "| arm | accuracy | perception rate | format | evaluated step |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm in [arm for arm in ARMS if arm in arms]:
        row = arms[arm]
        lines.append(
            f"| {ARM_TITLES[arm]} | {_fmt(row['accuracy'])} | {_fmt(row['perception_rate'])} | "
            f"{_fmt(row['format'])} | {row['dump_step']} |"
        )
    lines += [
        "",
        "McNemar (exact, two-sided; b = A right and B wrong, c = A wrong and B right):",
        "",
        "| A vs B | perception b | c | p | accuracy b | c | p |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in comparisons_of(trained):
        result = comparisons[f"{a}_vs_{b}"]
        per, acc = result["perception"], result["accuracy"]
        lines.append(
            f"| {ARM_TITLES[a]} vs {ARM_TITLES[b]} | {per['b']} | {per['c']} | {_fmt(per['p_exact'])} | "
            f"{acc['b']} | {acc['c']} | {_fmt(acc['p_exact'])} |"
        )
    target_result = results["target"]
    if target_result["holds"] is None:
        lines += ["", f"Target not checked: {target_result['unchecked']}."]
    else:
        lines += ["", f"Target {'holds' if target_result['holds'] else 'does NOT hold'}:", ""]
        lines += [f"- {name}: {'yes' if ok else 'no'}" for name, ok in target_result["clauses"].items()]
    step0_report = results.get("step0")
    if step0_report:
        from perception_verl_demo.modes import render_step0

        lines += ["", "## Step 0 (the warmed policy, sampled before training)", "", "```"]
        lines += [render_step0(step0_report), "```"]
    lines += ["", "## Training curves", "", "![reward components](arms_rewards.png)", ""]
    lines += ["![rollouts](arms_rollouts.png)", ""]
    lines += [f"Per-arm reports: {', '.join(f'[{arm}](report_{arm}/report.md)' for arm in trained)}."]
    return "\n".join(lines) + "\n"


def gather(out_dir: Path, *, seed: int, judge: str, trained: Sequence[str] = TRAINED_ARMS) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and the overlay plots of the run at ``out_dir``, whose
    ``trained`` arms were trained and evaluated beside the base policy."""
    trained = check_trained(trained)
    arms = {arm: arm_scores(out_dir / "eval" / arm) for arm in ("base", *trained)}
    pairs = comparisons_of(trained)
    comparisons = {f"{a}_vs_{b}": comparison(out_dir / "compare" / f"{a}_vs_{b}.json") for a, b in pairs}
    step0_path = out_dir / "step0.json"
    results: dict[str, Any] = {
        "seed": seed,
        "judge": judge,
        "arms": arms,
        "comparisons": comparisons,
        "target": target(arms, comparisons),
        "step0": json.loads(step0_path.read_text()) if step0_path.is_file() else None,
    }
    settings = out_dir / "settings.json"
    if settings.is_file():
        results["settings"] = json.loads(settings.read_text())
    report_dir = out_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    metrics = {arm: metric_curves(out_dir / "arms" / arm / "metrics.jsonl") for arm in trained}
    plot_overlay(metrics, report_dir / "arms_rewards.png", f"Reward components per step (seed {seed})")
    problems_file = out_dir / "source" / PROBLEMS_FILE
    rollouts = {arm: rollout_curves(out_dir / "arms" / arm / "rollouts", problems_file) for arm in trained}
    results["rollout_curves"] = rollouts
    plot_overlay(rollouts, report_dir / "arms_rollouts.png", f"verl's rollouts per step (seed {seed})")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (report_dir / "report.md").write_text(render_report(results))
    (out_dir / "report.md").write_text(render_report(results).replace("](", "](report/"))
    return results


# --- progress -----------------------------------------------------------------------------------------

PROGRESS_KEYS = (
    ("reward/score/mean", "score"),
    ("reward/accuracy/mean", "accuracy"),
    ("reward/perception/mean", "perception"),
    ("reward/format/mean", "format"),
    ("val-core/hiyouga/geometry3k/reward/mean@1", "val score"),
    ("timing_s/step", "s"),
)
_PASSED_THROUGH = (
    "step-0",
    "format ",
    "perceptive ",
    "terse ",
    "accuracy by mode",
    "wrote ",
    "warmed policy",
    "warm-up:",
    "copy pre-training",
    "copy check",
    "warmup ",
    "data:",
    "error",
    "FAILED",
    "Traceback",
    "output ",
    "train ",
    "test ",
)


def progress_line(line: str, tag: str) -> str | None:
    """The one-line summary of a verl step line (``step:N - key:value - ...``), the line itself for
    the miniature's own messages, else None (pure)."""
    import re

    match = re.search(r"step:(\d+) - (.*)", line)
    if match:
        values = dict(item.split(":", 1) for item in match.group(2).split(" - ") if ":" in item)
        shown = []
        for key, label in PROGRESS_KEYS:
            if key in values:
                try:
                    shown.append(f"{label} {float(values[key]):.3f}")
                except ValueError:
                    continue
        return f"{tag} verl step {match.group(1)}: " + ", ".join(shown) if shown else None
    stripped = line.strip()
    if stripped.startswith(_PASSED_THROUGH) or " vs " in stripped[:40]:
        return f"{tag} {stripped}"
    return None


def progress(stream: Any, out: Any, tag: str) -> None:
    for line in stream:
        shown = progress_line(line, tag)
        if shown is not None:
            out.write(shown + "\n")
            out.flush()


# --- CLI ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the geometry source, annotations and problems.json")
    data.add_argument("out", type=Path)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--train", type=int, default=200)
    data.add_argument("--test", type=int, default=50)
    data.add_argument("--warmup", type=int, default=0, help="warm-up problems (default 0)")
    policy = sub.add_parser("policy", help="build and warm the tiny VL policy on the mode mix")
    policy.add_argument("out", type=Path)
    policy.add_argument("--data-dir", type=Path, required=True, help="the built parquet folder")
    policy.add_argument("--problems", type=Path, required=True, help="problems.json of the data stage")
    policy.add_argument("--mix", default="2:1:4:2")
    policy.add_argument("--steps", type=int, default=1500)
    policy.add_argument("--lr", type=float, default=3e-3)
    policy.add_argument("--batch-size", type=int, default=8)
    policy.add_argument("--seed", type=int, default=0)
    policy.add_argument("--layers", type=int, default=None, help="text layers (default: the twin's 2)")
    policy.add_argument("--copy-steps", type=int, default=0, help="copy pre-training steps (default 0)")
    policy.add_argument("--copy-lr", type=float, default=1e-3)
    policy.add_argument("--copy-target", type=float, default=0.0, help="anneal once under this loss")
    policy.add_argument("--copy-anneal", type=int, default=0, help="steps of lr decay to 0 after the target")
    policy.add_argument(
        "--copy-small-alphabet",
        type=float,
        default=0.0,
        help="share of copy rows drawn from 3-8 tokens, so tokens repeat inside a span (0-1)",
    )
    check = sub.add_parser("step0", help="sample the warmed policy and print the step-0 check")
    check.add_argument("model", type=Path)
    check.add_argument("--data-dir", type=Path, required=True)
    check.add_argument("--problems", type=Path, required=True)
    check.add_argument("--out", type=Path, required=True, help="step0.json to write")
    check.add_argument("--n-problems", type=int, default=20)
    check.add_argument("--n", type=int, default=8)
    check.add_argument("--temperature", type=float, default=1.0)
    check.add_argument("--max-new-tokens", type=int, default=160)
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--no-fail", action="store_true", help="report a failed check but exit 0")
    results = sub.add_parser("results", help="gather results.json and report.md")
    results.add_argument("out_dir", type=Path)
    results.add_argument("--seed", type=int, default=0)
    results.add_argument("--judge", required=True, help="the perception judge the labels came from")
    results.add_argument(
        "--arms",
        nargs="+",
        default=list(TRAINED_ARMS),
        choices=TRAINED_ARMS,
        help="the arms this run trained (default: both)",
    )
    show = sub.add_parser("progress", help="echo the progress lines of a stage's output (stdin)")
    show.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    if args.command == "progress":
        progress(sys.stdin, sys.stdout, args.tag)
        return 0
    if args.command == "data":
        written = write_data(
            args.out, seed=args.seed, n_train=args.train, n_test=args.test, n_warmup=args.warmup
        )
        logger.info("data: %s", written)
    elif args.command == "policy":
        summary = build_warmed_policy(
            args.out, args.data_dir, args.problems, mix=args.mix, steps=args.steps, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed, layers=args.layers, copy_steps=args.copy_steps,
            copy_lr=args.copy_lr, copy_target=args.copy_target, copy_anneal=args.copy_anneal,
            copy_small_alphabet=args.copy_small_alphabet,
        )  # fmt: skip
        logger.info("warmed policy: %s", summary)
    elif args.command == "step0":
        from perception_verl_demo.modes import render_step0

        report = step0(
            args.model, args.data_dir, args.problems, problems=args.n_problems, n=args.n,
            temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed,
        )  # fmt: skip
        failures = step0_failures(report)
        report["failures"] = failures
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        sys.stdout.write(render_step0(report) + "\n")
        if failures:
            sys.stdout.write("step-0 check FAILED: " + "; ".join(failures) + "\n")
            return 0 if args.no_fail else 1
        sys.stdout.write("step-0 check passed\n")
    else:
        gathered = gather(args.out_dir, seed=args.seed, judge=args.judge, trained=args.arms)
        sys.stdout.write((args.out_dir / "report.md").read_text())
        return 0 if gathered else 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
