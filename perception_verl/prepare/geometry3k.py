"""Write verl-ready Geometry3K parquet files with Perception-R1's visual annotations.

By default Geometry3K comes from the hub (hiyouga/geometry3k) and annotations from the published
set (tongxiao2002/Perception-R1-Dataset); ``--source``/``--annotations`` also take a local
save_to_disk folder, a folder of parquet shards, or a parquet/jsonl file. Source split ``train``
goes to train.parquet and ``test`` to test.parquet; ``validation`` is unused unless mapped with
``--splits``. ``--only-annotated`` filters the train output only. Also run as
``python data_prep/build_geometry3k.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from perception_verl.argparsing import command_parser
from perception_verl.data.annotation_source import PUBLISHED_ANNOTATIONS
from perception_verl.data.annotations import AnnotationError
from perception_verl.data.checks import MAX_ANNOTATION_CHARS, MAX_ANNOTATIONS, MAX_PROBLEM_CHARS
from perception_verl.data.geometry3k import (
    DEFAULT_SPLIT_MAP,
    GEOMETRY3K,
    BuildConfig,
    build_geometry3k,
    format_summary,
)
from perception_verl.data.loading import SourceError
from perception_verl.data.schema import DEFAULT_INSTRUCTION, RowError


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def parse_split_map(text: str) -> dict[str, str]:
    """``"train=train,validation=train,test=test"`` -> ``{source split: output name}``."""
    mapping: dict[str, str] = {}
    for item in text.split(","):
        source, sep, output = item.partition("=")
        source, output = source.strip(), output.strip()
        if not sep or not source or not output:
            raise argparse.ArgumentTypeError(
                f"bad split mapping {item!r}: use SOURCE=OUTPUT, e.g. train=train"
            )
        if source in mapping:
            raise argparse.ArgumentTypeError(f"source split {source!r} is mapped twice")
        mapping[source] = output
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "perception-verl build-geometry3k",
        __doc__,
        "perception-verl build-geometry3k --out-dir ~/data/geometry3k_perception",
        "perception-verl build-geometry3k --only-annotated",
        "perception-verl build-geometry3k --source ./geometry3k --annotations ./annotations.jsonl",
        "perception-verl build-geometry3k --splits train=train,validation=train,test=test",
    )
    parser.add_argument(
        "--source",
        default=GEOMETRY3K,
        help="hub dataset id, save_to_disk folder, parquet shard folder or file (default: %(default)s)",
    )
    annotations = parser.add_mutually_exclusive_group()
    annotations.add_argument(
        "--annotations",
        default=PUBLISHED_ANNOTATIONS,
        help="annotation source: hub id, folder, .parquet or .jsonl (default: %(default)s)",
    )
    annotations.add_argument("--no-annotations", action="store_true", help="write rows without annotations")
    parser.add_argument(
        "--annotation-column",
        default=None,
        help="column holding the facts (default: first of visual_key_info, annotations)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("~/data/geometry3k_perception"),
        help="folder for <output>.parquet files (default: %(default)s)",
    )
    parser.add_argument("--train-out", type=Path, default=None, help="path of the train output")
    parser.add_argument("--test-out", type=Path, default=None, help="path of the test output")
    parser.add_argument(
        "--splits",
        type=parse_split_map,
        default=None,
        help="SOURCE=OUTPUT pairs, comma-separated (default: train=train,test=test)",
    )
    parser.add_argument(
        "--only-annotated",
        action="store_true",
        help="keep only annotated rows in the train output (the paper's 1,442-row set)",
    )
    instruction = parser.add_mutually_exclusive_group()
    instruction.add_argument("--instruction", default=None, help="instruction text appended to each problem")
    instruction.add_argument(
        "--instruction-file", type=Path, default=None, help="file holding the instruction"
    )
    parser.add_argument(
        "--ignore-image-hash",
        action="store_true",
        help="match annotations on id/text/answer only, not on image pixels",
    )
    parser.add_argument(
        "--max-annotations", type=int, default=MAX_ANNOTATIONS,
        help="most annotations on one row; more stop the build naming the row (default %(default)s: the "
        "judge answers one tag each within its 512-token budget)",
    )  # fmt: skip
    parser.add_argument(
        "--max-annotation-chars", type=int, default=MAX_ANNOTATION_CHARS,
        help="longest annotation in characters; longer stops the build (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-problem-chars", type=int, default=MAX_PROBLEM_CHARS,
        help="longest problem text in characters; longer stops the build (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--drop-suspect-annotations", action="store_true",
        help="drop annotations that read as instructions to the judge (default: keep them, warn about "
        "each and count them in the summary)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _outputs(args: argparse.Namespace, split_map: dict[str, str]) -> dict[str, Path]:
    out_dir = args.out_dir.expanduser()
    named = {"train": args.train_out, "test": args.test_out}
    outputs: dict[str, Path] = {}
    for name in dict.fromkeys(split_map.values()):
        path = named.get(name) or out_dir / f"{name}.parquet"
        outputs[name] = Path(path).expanduser()
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    split_map = args.splits or dict(DEFAULT_SPLIT_MAP)
    try:
        if args.instruction_file is not None:
            instruction = args.instruction_file.read_text(encoding="utf-8")
        elif args.instruction is not None:
            instruction = args.instruction
        else:
            instruction = DEFAULT_INSTRUCTION
        config = BuildConfig(
            outputs=_outputs(args, split_map),
            source=args.source,
            annotations=None if args.no_annotations else args.annotations,
            annotation_column=args.annotation_column,
            split_map=split_map,
            instruction=instruction,
            only_annotated=args.only_annotated,
            match_images=not args.ignore_image_hash,
            progress=not args.no_progress,
            max_annotations=args.max_annotations,
            max_annotation_chars=args.max_annotation_chars,
            max_problem_chars=args.max_problem_chars,
            drop_suspect_annotations=args.drop_suspect_annotations,
        )
        report = build_geometry3k(config)
    except (RowError, AnnotationError, SourceError, ValueError, OSError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    _emit(format_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
