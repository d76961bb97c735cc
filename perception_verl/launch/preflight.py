"""The recipes' start-time judge probe: ``python -m perception_verl.launch.preflight --urls U --model M``.

Run by ``pv_train`` before it launches verl (the real run, not only the dry run), so a judge that is
down stops the run before a policy or vLLM is loaded. It waits, bounded by ``--timeout-s``, for a
judge still loading (port not open yet, ``/health`` not yet 200), with a progress line every few
seconds, and exits 1 with one line naming each URL and its fault. Imports no verl: it starts fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from perception_verl.argparsing import command_parser
from perception_verl.client.chat_config import ChatClientConfig
from perception_verl.client.cli_secrets import refuse_secret_flags
from perception_verl.client.endpoint import JudgeEndpoint
from perception_verl.client.errors import JudgeUnavailable
from perception_verl.client.health import check_health
from perception_verl.client.replicas import url_list


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m perception_verl.launch.preflight",
        __doc__,
        "perception-verl preflight --judge-url http://judge-host:30000 \\",
        "    --judge-model Qwen/Qwen2.5-32B-Instruct-AWQ --timeout-s 1800",
    )
    parser.add_argument(
        "--judge-url", "--urls", dest="urls", required=True,
        help="judge base URL(s), comma-separated replicas",
    )  # fmt: skip
    parser.add_argument(
        "--judge-model", "--model", dest="model", required=True,
        help="the served model name /v1/models must list",
    )  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=20.0, help="bound on the whole wait (s)")
    parser.add_argument("--api-key-env", default=None, help="variable holding the API key")
    refuse_secret_flags(parser)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[judge] %(message)s", stream=sys.stderr)
    try:
        endpoint = JudgeEndpoint(url_list(args.urls), args.model, args.api_key_env)
        config = ChatClientConfig.of(endpoint, health_timeout_s=args.timeout_s)
        check_health(config)
    except (JudgeUnavailable, ValueError) as error:
        sys.stdout.write(f"JUDGE CHECK FAILED: {error}\n")
        sys.stdout.write(
            "start the judge (bash recipes/launch_sglang_judge.sh), fix JUDGE_URL/JUDGE_MODEL, or wait "
            "longer for a judge still loading with JUDGE_WAIT_S (e.g. 1800 for a 32B model)\n"
        )
        return 1
    sys.stdout.write(f"[judge] {args.model} healthy at {', '.join(config.urls)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
