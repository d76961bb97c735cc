"""The miniature's response modes: format, mode detection, accuracy independent of the mode, step-0 check."""

from __future__ import annotations

import pytest

from perception_verl.judge.lexical import lexical_verdicts
from perception_verl.rewards.accuracy import accuracy_reward
from perception_verl.rewards.format import format_reward
from perception_verl_demo.geometry import generate
from perception_verl_demo.modes import (
    DEFAULT_MIX,
    MODES,
    Scored,
    check_mix,
    detect_mode,
    parse_mix,
    response,
    score_sample,
    step0_check,
    warmup_responses,
)


@pytest.fixture(scope="module")
def problems():
    split = generate(40, 20, seed=2)
    return split["train"] + split["test"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("correct", [True, False])
def test_every_response_is_well_formed_and_scores_as_its_kind(problems, mode, correct) -> None:
    for problem in problems:
        text = response(problem, mode, correct)
        assert format_reward(text) == 1.0
        assert accuracy_reward(text, problem.answer).score == float(correct)
        verdicts = lexical_verdicts(list(problem.facts), text)
        assert verdicts == ((1,) * len(problem.facts) if mode == "perceptive" else (0,) * len(problem.facts))
        assert detect_mode(text, problem.facts) == mode


def test_partial_statement_is_not_perceptive(problems) -> None:
    problem = problems[0]
    text = response(problem, "terse", True).replace("<think>\n", f"<think>\n{problem.facts[1]}. ")
    assert detect_mode(text, problem.facts) == "terse"
    assert detect_mode(text, problem.facts, threshold=0.3) == "perceptive"


def test_garbled_perceptive_response_is_its_mode_but_states_no_fact(problems) -> None:
    problem = problems[0]
    text = response(problem, "terse", True).replace("<think>\n", "<think>\nThe figure shows: QQ is 7. ")
    assert detect_mode(text, problem.facts) == "perceptive"
    assert score_sample(problem, text).states_facts is False
    assert score_sample(problem, response(problem, "perceptive", True)).states_facts is True


def test_mix_weights_and_accuracy_not_tied_to_mode(problems) -> None:
    examples = warmup_responses(problems)
    assert len(examples) == 4 * len(problems)
    assert sum(e.weight for e in examples) == pytest.approx(len(problems))
    for mode in MODES:
        rows = [e for e in examples if e.mode == mode]
        right = sum(e.weight for e in rows if e.correct) / sum(e.weight for e in rows)
        assert right == pytest.approx(2 / 3)
    perceptive = sum(e.weight for e in examples if e.mode == "perceptive") / len(problems)
    assert perceptive == pytest.approx(1 / 3)
    assert parse_mix("2:1:4:2") == check_mix(DEFAULT_MIX)
    with pytest.raises(ValueError, match="four weights"):
        parse_mix("1:2")
    with pytest.raises(ValueError, match="not all 0"):
        parse_mix("0:0:0:0")


def _rows(pid: int, perceptive_right: int, perceptive_wrong: int, terse_right: int, terse_wrong: int):
    kinds = [("perceptive", True)] * perceptive_right + [("perceptive", False)] * perceptive_wrong
    kinds += [("terse", True)] * terse_right + [("terse", False)] * terse_wrong
    return [Scored(pid, mode, 1.0, correct) for mode, correct in kinds]


def test_step0_check_flags_a_mode_tied_to_accuracy() -> None:
    independent = [row for pid in range(10) for row in _rows(pid, 2, 1, 4, 2)]
    report = step0_check(independent)
    assert report["perceptive_share"] == pytest.approx(1 / 3)
    assert report["by_mode"]["perceptive"]["accuracy"] == pytest.approx(2 / 3)
    assert not report["tied"] and report["cmh"]["p"] > 0.5
    tied = [row for pid in range(10) for row in _rows(pid, 1, 3, 5, 1)]
    report = step0_check(tied)
    assert report["tied"] and report["cmh"]["p"] < 0.01
    assert report["cmh"]["pooled_odds_ratio"] < 1


def test_score_sample_reads_a_response(problems) -> None:
    problem = problems[3]
    scored = score_sample(problem, response(problem, "perceptive", False))
    assert (scored.mode, scored.format, scored.correct) == ("perceptive", 1.0, False)
    scored = score_sample(problem, "The answer is " + problem.answer)
    assert scored.format == 0.0 and scored.mode == "terse"


def test_perceptive_statement_is_the_prompts_tokens(problems, tmp_path) -> None:
    """On its own line the restated clause tokenizes as in the prompt (after the image), so the tiny
    policy copies tokens one for one; after a space the first name would be another token."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from perception_verl_demo.tiny_tokenizer import build_tiny_tokenizer

    texts = [p.problem.replace("<image>", "") for p in problems]
    texts += [response(p, mode, True) for p in problems for mode in MODES]
    tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(tmp_path, 1024, texts)))

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    for problem in problems[:10]:
        statement = ids(problem.statement)
        prompt = ids(problem.problem.replace("<image>", ""))
        restated = ids(response(problem, "perceptive", True))
        assert prompt[: len(statement)] == statement
        assert any(restated[k : k + len(statement)] == statement for k in range(len(restated)))
    assert ids(" " + problems[0].statement)[0] != ids(problems[0].statement)[0]
