"""Write the paper's evaluation benchmarks as verl-ready parquet files.

Defaults: MathVista testmini, MathVerse testmini, MathVision test, WeMath testmini, each written to
<out-dir>/<benchmark>.parquet. ``--source NAME=PATH`` reads a local copy (a folder of hub parquet
shards, a save_to_disk folder or one parquet/jsonl file); ``--column NAME.KEY=COLUMN`` renames a column
the converter reads (see perception_verl/data/converters/ for the keys; ``wemath.key=-`` builds WeMath
without its key, and so without its four-dimensional metric). ``--subset`` keeps problems
carrying every given tag (MathVista: task:..., context:..., skill:...; MathVerse: version:...,
subject:...; MathVision: subject:..., level:...; WeMath: concept:...). ``--annotations NAME=FILE``
adds visual facts by id (jsonl of {"id", "annotations"}) for perception labels. Also run as
``python data_prep/build_benchmarks.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from perception_verl.argparsing import command_parser
from perception_verl.data.benchmarks import BENCHMARKS, BenchmarkBuild, build_benchmarks, format_summaries
from perception_verl.data.loading import SourceError
from perception_verl.data.schema import DEFAULT_INSTRUCTION, RowError


def _pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip() or not item.strip():
            raise argparse.ArgumentTypeError(f"bad {flag} {value!r}: use NAME=VALUE")
        mapping[key.strip()] = item.strip()
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "perception-verl build-benchmarks",
        __doc__,
        "perception-verl build-benchmarks --out-dir ~/data/perception_eval",
        "perception-verl build-benchmarks --benchmarks mathvista --source mathvista=./MathVista",
        'perception-verl build-benchmarks --benchmarks mathvista --subset "task:geometry problem solving" \\',
        "    --sample 50 --seed 0 --out mathvista=~/data/perception_eval/mathvista_geometry50.parquet",
    )
    parser.add_argument(
        "--benchmarks", default=",".join(BENCHMARKS), help="comma list (default: %(default)s)"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("~/data/perception_eval"))
    parser.add_argument(
        "--out", action="append", default=[], metavar="NAME=PATH", help="output path of one benchmark"
    )
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH_OR_HUB_ID")
    parser.add_argument("--split", action="append", default=[], metavar="NAME=SPLIT")
    parser.add_argument("--column", action="append", default=[], metavar="NAME.KEY=COLUMN")
    parser.add_argument("--annotations", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument(
        "--subset", action="append", default=[], metavar="TAG", help="keep problems with this tag"
    )
    parser.add_argument("--sample", type=int, default=None, help="keep N problems drawn with --seed")
    parser.add_argument("--seed", type=int, default=0)
    instruction = parser.add_mutually_exclusive_group()
    instruction.add_argument("--instruction", default=None, help="instruction appended to each problem")
    instruction.add_argument("--instruction-file", type=Path, default=None)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
        outs, sources = _pairs(args.out, "--out"), _pairs(args.source, "--source")
        splits, annotations = _pairs(args.split, "--split"), _pairs(args.annotations, "--annotations")
        columns: dict[str, dict[str, str]] = {}
        for key, column in _pairs(args.column, "--column").items():
            name, dot, field = key.partition(".")
            if not dot:
                raise ValueError(f"bad --column {key!r}: use NAME.KEY=COLUMN, e.g. wemath.id=ID")
            columns.setdefault(name, {})[field] = column
        for flag, mapping in (
            ("--out", outs),
            ("--source", sources),
            ("--split", splits),
            ("--column", columns),
            ("--annotations", annotations),
        ):
            stray = sorted(set(mapping) - set(names))
            if stray:
                raise ValueError(f"{flag} names benchmark(s) {stray} that are not built (--benchmarks)")
        if args.instruction_file is not None:
            instruction = args.instruction_file.read_text(encoding="utf-8")
        else:
            instruction = args.instruction if args.instruction is not None else DEFAULT_INSTRUCTION
        builds = [
            BenchmarkBuild(
                name=name,
                out=Path(outs.get(name) or args.out_dir / f"{name}.parquet").expanduser(),
                source=sources.get(name),
                split=splits.get(name),
                columns=columns.get(name, {}),
                subsets=tuple(args.subset),
                sample=args.sample,
                seed=args.seed,
                annotations=annotations.get(name),
            )
            for name in names
        ]
        summaries = build_benchmarks(builds, instruction=instruction, progress=not args.no_progress)
    except (argparse.ArgumentTypeError, RowError, SourceError, ValueError, OSError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    sys.stdout.write(format_summaries(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
