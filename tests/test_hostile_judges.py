"""Hostile judges and hosts on loopback, through the reward manager's contract and the ``score`` CLI.

Issue 25, items 1-5: a key in the judge URL's userinfo never reaches a log line, an error, a label or
a dump; a 4xx other than 429 ends the sample's judge call at once (perception excluded, counted by
kind) instead of being re-sent until the step deadline; no redirect is followed; replies are read up
to a bound and a re-ask quotes only a bounded excerpt; conflicting key sources and keys on the command
line stop with a message that names the options and never the key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from perception_verl import score
from perception_verl.config import PerceptionRewardConfig, RewardConfigError, judge_label
from perception_verl.integration.manager import PerceptionRewardManager
from perception_verl.integration.metrics import JUDGE_KEY, reward_metrics
from perception_verl.judge.sglang import REASK_CHARS_PER_TOKEN
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.loopback import LoopbackServer
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto, score_all

KEY = "sk-hostile-9Qw3Er7Ty1Ui5Op2As8Df4Gh"
KEY_ENV = "PV_HOSTILE_JUDGE_KEY"
GOOD = (
    "<think>\nJKLM is a parallelogram, so JK = LM and 3f - 6 = 2f + 1.\n</think>\n"
    "<answer>\nSo f = 7 and \\boxed{7}.\n</answer>"
)
FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]
CONTEXT_400 = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4488 in the messages, 512 in the completion). Please reduce the length of the messages or completion."
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def make_manager(tokenizer: Any, **kwargs: Any) -> PerceptionRewardManager:
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}, "trainer": {"use_v1": True}})
    return PerceptionRewardManager(config, tokenizer, compute_score=None)


def run_all(manager: PerceptionRewardManager, data: Any) -> list[dict]:
    return score_all(manager, data)


def judged_samples(tokenizer: Any, url: str, count: int = 4, **options: Any) -> list[dict]:
    """``count`` annotated samples scored by a manager on the judge at ``url`` (20 s step deadline)."""
    kwargs = {"judge": "sglang", "judge_urls": url, "judge_model": JUDGE_MODEL, "judge_step_deadline_s": 20.0}
    manager = make_manager(tokenizer, **{**kwargs, **options})
    samples = [Sample("Find f. <image>", f"{GOOD} Case {i}.", "7", FACTS, uid=str(i)) for i in range(count)]
    return [out["reward_extra_info"] for out in run_all(manager, build_dataproto(tokenizer, samples))]


def score_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, rows: int = 1
) -> tuple[int, str, str]:
    """``perception-verl score --json`` in-process on ``rows`` annotated rows; (status, stdout, stderr)."""
    data = tmp_path / "gen.jsonl"
    line = {"response": GOOD, "ground_truth": "7", "annotations": FACTS}
    data.write_text("".join(json.dumps({**line, "response": f"{GOOD} {i}"}) + "\n" for i in range(rows)))
    try:
        code = score.main(["--input", str(data), "--json", "--health-timeout-s", "5", *args])
    except SystemExit as exit_:  # argparse
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary_of(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.splitlines()[-1])


def leaks(*texts: str) -> bool:
    """Whether any text holds the key or a run of 8 of its characters."""
    runs = {KEY[i : i + 8] for i in range(len(KEY) - 7)}
    return any(run in text for text in texts for run in runs)


# ------------------------------------------------------------------ 1. the key in the URL's userinfo


def test_a_key_in_the_url_stops_the_manager_and_is_never_shown(
    tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_sglang() as server:
        url = server.url.replace("http://", f"http://judge:{KEY}@")
        with pytest.raises(RewardConfigError) as error:
            judged_samples(tokenizer, url, count=1)
        assert server.routes["/v1/chat/completions"] == 0
    message = str(error.value)
    assert "judge_urls" in message and "api_key_env" in message and "http://***@127.0.0.1" in message
    assert not leaks(message, caplog.text)


def test_a_key_in_the_url_stops_the_score_cli_and_is_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_sglang() as server:
        url = server.url.replace("http://", f"http://judge:{KEY}@")
        code, out, err = score_cli(
            tmp_path, capsys, "--judge", "sglang", "--judge-url", url, "--judge-model", JUDGE_MODEL
        )
        assert server.routes["/v1/chat/completions"] == 0
    assert code == 2 and "--judge-url" in err and "--api-key-env" in err
    assert not leaks(out, err, caplog.text)


def test_labels_and_metric_names_never_carry_userinfo() -> None:
    options = PerceptionRewardConfig(judge="sglang", judge_urls=(f"http://judge:{KEY}@h:1",), judge_model="m")
    label = judge_label(options)
    assert label == "sglang:m@http://***@h:1"
    assert not leaks(label, *reward_metrics({JUDGE_KEY: [label], "score": [1.0]}))


# ------------------------------------------------------------------ 2. final kinds end the call at once


@pytest.mark.parametrize(
    ("status", "text"),
    [(400, CONTEXT_400), (401, "invalid API key"), (403, "forbidden"), (404, "no such route"), (422, "bad")],
)
def test_a_4xx_excludes_perception_at_once_instead_of_at_the_deadline(
    tokenizer: Any, status: int, text: str
) -> None:
    with fake_sglang(fail_rate=1.0, fail_status=status, fail_text=text) as server:
        infos = judged_samples(tokenizer, server.url, count=4)
        sent = server.routes["/v1/chat/completions"]
    assert sent == 4, f"HTTP {status} was sent {sent} times for 4 samples: a final answer must not be retried"
    for info in infos:
        assert (
            info["judge_failed"] == 1.0 and info["perception_excluded"] == 1.0 and info["perception"] == 0.0
        )


def test_the_cli_counts_each_final_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for status, text, kind in ((400, CONTEXT_400, "context_length"), (401, "no", "http_401")):
        with fake_sglang(fail_rate=1.0, fail_status=status, fail_text=text) as server:
            judge = ("--judge", "sglang", "--judge-url", server.url, "--judge-model", JUDGE_MODEL)
            code, out, err = score_cli(tmp_path, capsys, *judge, rows=3)
            assert server.routes["/v1/chat/completions"] == 3
        assert code == 0, err
        summary = summary_of(out)
        assert summary["judge_failure_kinds"] == {kind: 3} and summary["rows_perception_scored"] == 0


def test_a_429_with_a_huge_retry_after_is_retried_within_the_deadline(tokenizer: Any) -> None:
    with fake_sglang(fail_rate=0.5, fail_status=429, retry_after="3600", seed=3) as server:
        infos = judged_samples(tokenizer, server.url, count=4, judge_step_deadline_s=120.0)
        assert server.outcomes["fail"] >= 1, "the judge answered 429 at least once"
    assert [info["judge_failed"] for info in infos] == [0.0] * 4


# ------------------------------------------------------------------ 3. redirects


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_and_ends_the_call(
    tokenizer: Any, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_sglang() as elsewhere, fake_sglang(redirect_to=elsewhere.url, redirect_status=status) as front:
        infos = judged_samples(tokenizer, front.url, count=2)
        assert elsewhere.routes["/v1/chat/completions"] == 0, "the prompt went to another host"
        assert front.routes["/v1/chat/completions"] == 2, "a redirect is final: not re-sent"
        assert f"redirecting to {elsewhere.url}/v1/chat/completions" in caplog.text
    assert [info["judge_failed"] for info in infos] == [1.0, 1.0]
    assert [info["perception_excluded"] for info in infos] == [1.0, 1.0]


def test_the_cli_counts_redirects_and_hides_userinfo_in_the_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with fake_sglang(redirect_to=f"http://judge:{KEY}@10.0.0.1:9") as front:
        code, out, err = score_cli(
            tmp_path, capsys, "--judge", "sglang", "--judge-url", front.url, "--judge-model", JUDGE_MODEL
        )
    assert code == 0, err
    assert summary_of(out)["judge_failure_kinds"] == {"redirect": 1}
    assert "redirecting to http://***@10.0.0.1:9" in caplog.text
    assert not leaks(out, err, caplog.text)


# ------------------------------------------------------------------ 4. reply size and re-ask excerpts


def test_an_oversize_reply_is_a_final_kind_and_never_sent_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "the response states the facts " * 100_000  # 3 MB, no tags
    with LoopbackServer(lambda messages, body: huge, model=JUDGE_MODEL) as server:
        code, out, err = score_cli(
            tmp_path, capsys, "--judge", "sglang", "--judge-url", server.url, "--judge-model", JUDGE_MODEL
        )
        sent = server.routes["/v1/chat/completions"]
    assert code == 0, err
    assert summary_of(out)["judge_failure_kinds"] == {"oversize": 1}
    assert sent == 1, "an oversize reply is neither retried nor re-asked"


def test_a_re_ask_quotes_a_bounded_excerpt_of_the_bad_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rambling = "no tags here, only words " * 1600  # 40,000 characters: under the size bound, malformed
    with LoopbackServer(lambda messages, body: rambling, model=JUDGE_MODEL) as server:
        code, _, err = score_cli(
            tmp_path, capsys, "--judge", "sglang", "--judge-url", server.url, "--judge-model", JUDGE_MODEL,
            "--max-new-tokens", "512",
        )  # fmt: skip
        bodies = list(server.received)
    assert code == 0, err
    assert len(bodies) == 2, "one ask and one re-ask"
    quoted = [m["content"] for m in bodies[1]["messages"] if m["role"] == "assistant"]
    assert len(quoted) == 1 and len(quoted[0]) <= REASK_CHARS_PER_TOKEN * 512 + 16
    assert rambling.startswith(quoted[0].removesuffix(" [...]"))


# ------------------------------------------------------------------ 5. key sources and the command line


def test_a_key_in_the_env_var_and_in_the_url_names_both_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with fake_sglang(api_key=KEY) as server:
        url = server.url.replace("http://", f"http://judge:{KEY}@")
        code, out, err = score_cli(
            tmp_path, capsys, "--judge", "sglang", "--judge-url", url, "--judge-model", JUDGE_MODEL,
            "--api-key-env", KEY_ENV,
        )  # fmt: skip
    assert code == 2
    assert "two sources" in err and KEY_ENV in err and "--api-key-env" in err and "--judge-url" in err
    assert "Cannot combine AUTHORIZATION" not in err
    assert not leaks(out, err)


@pytest.mark.parametrize(
    "args",
    [
        ("--judge-api-key", KEY),
        (f"--judge-api-key={KEY}",),
        ("--api-key", KEY),  # argparse's prefix match would read it as --api-key-env
        ("--api-key-env", KEY),  # a key where the NAME of a variable belongs
    ],
    ids=["judge-api-key", "judge-api-key=", "api-key", "api-key-env-value"],
)
def test_a_key_on_the_command_line_is_refused_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    with fake_sglang(api_key=KEY) as server:
        code, out, err = score_cli(
            tmp_path,
            capsys,
            "--judge",
            "sglang",
            "--judge-url",
            server.url,
            "--judge-model",
            JUDGE_MODEL,
            *args,
        )
        assert server.routes["/v1/chat/completions"] == 0
    assert code == 2 and "--api-key-env" in err
    assert not leaks(out, err)


def test_help_says_where_the_key_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        score.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "NAME of the environment variable holding the judge's API key" in text
    assert "never a flag" in text
