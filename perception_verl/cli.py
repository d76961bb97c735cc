"""``perception-verl <command> [options]``: one console script for every command-line tool.

Each command forwards its arguments to the ``main`` of the module named beside it, so
``perception-verl score --input X --judge J`` is ``python -m perception_verl.score --input X --judge J``;
both stay supported. ``perception-verl --help`` lists the commands, ``perception-verl <command> --help``
its options (each module's ``build_parser()``: a one-line purpose, the options, an example), and
``perception-verl --version`` the package version.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from perception_verl import __version__

# command -> (module whose main(argv) runs it, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("perception_verl.score", "score saved generations offline (reward components per row)"),
    "label-perception": (
        "perception_verl.analysis.label_perception",
        "label generations perception-correct or not with a judge",
    ),
    "mcnemar": ("perception_verl.analysis.mcnemar", "McNemar's test on two runs' perception labels"),
    "build-geometry3k": (
        "perception_verl.prepare.geometry3k",
        "write verl-ready Geometry3K parquet with annotations",
    ),
    "build-benchmarks": (
        "perception_verl.prepare.benchmarks",
        "write the evaluation benchmarks as verl-ready parquet",
    ),
    "collect-annotations": ("perception_verl.annotate.cli", "collect visual annotations with LLM endpoints"),
    "eval-score": ("perception_verl.evaluation.score", "score a validation dump against the benchmarks"),
    "eval-compare": ("perception_verl.evaluation.compare", "compare two scored evaluation runs"),
    "eval-report": ("perception_verl.evaluation.report", "plots and report.md of a training run"),
    "eval-dry-run": ("perception_verl.evaluation.dryrun", "check an evaluation recipe without running it"),
    "dry-run": ("perception_verl.launch.dryrun", "check a training recipe (hydra overrides), no training"),
    "preflight": ("perception_verl.launch.preflight", "probe the judge server(s) before a run"),
}


def usage() -> str:
    """The ``--help`` text: every command with its module and help line."""
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: perception-verl <command> [options]   (perception-verl <command> --help for its options)",
        "       perception-verl --version",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}  [python -m {module}]" for name, (module, text) in COMMANDS.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``argv[0]``'s module ``main`` with the rest of ``argv``; 2 on an unknown command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        sys.stdout.write(f"perception-verl {__version__}\n")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"perception-verl: unknown command {command!r}\n\n{usage()}")
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
