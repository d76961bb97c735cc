"""How every command builds its parser: its usage name, a one-line purpose, examples as the epilog."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def command_parser(prog: str, description: str | None, *example: str) -> argparse.ArgumentParser:
    """The parser of ``prog``: ``description`` on top, the ``example`` lines below the options."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="example:\n" + "\n".join(f"  {line}" for line in example),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_checked(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    check: Callable[[argparse.Namespace], str | None],
) -> argparse.Namespace:
    """The parsed ``argv``; ``check`` names a bad value or combination, which exits 2 with that message."""
    args = parser.parse_args(argv)
    problem = check(args)
    if problem:
        parser.error(problem)
    return args
