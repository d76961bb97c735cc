"""No secret on a command line: flags a user may try for an API key are refused without echoing it.

Every CLI that talks to a judge or an LLM endpoint takes the key only as the NAME of an environment
variable (``--api-key-env NAME``). A value given on the command line would show in the process list and
shell history, and argparse would print it back: its "unrecognized arguments" error repeats the flag's
value, and its prefix match turns ``--api-key sk-...`` into ``--api-key-env sk-...``, whose "variable not
set" error would print it again. :func:`refuse_secret_flags` registers those flags as hidden options that
stop with a message naming ``--api-key-env`` and never the value.
"""

from __future__ import annotations

import argparse
from typing import Any

SECRET_FLAGS = ("--api-key", "--judge-api-key", "--judge-key", "--api-token")
"""Flags a user may try for the key itself: refused without echoing their value (argparse's own error for an
unknown flag, and its prefix match of ``--api-key`` to ``--api-key-env``, would print the key)."""


class _RefuseSecret(argparse.Action):
    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: str | None = None
    ) -> None:
        flag = (option_string or self.option_strings[0]).split("=", 1)[0]
        parser.error(
            f"{flag} is not an option: a key is never given on the command line (its value "
            "is not shown here). Export it in an environment variable and name that with --api-key-env NAME"
        )


def refuse_secret_flags(parser: argparse.ArgumentParser) -> None:
    """Register :data:`SECRET_FLAGS` on ``parser`` as hidden options that stop with a message naming
    ``--api-key-env`` and never the value (for every CLI that talks to a judge or an LLM endpoint)."""
    known = set(parser._option_string_actions)
    flags = [flag for flag in SECRET_FLAGS if flag not in known]
    if flags:
        parser.add_argument(*flags, nargs="?", action=_RefuseSecret, help=argparse.SUPPRESS)
