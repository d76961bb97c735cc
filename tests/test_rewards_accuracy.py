"""Accuracy reward: answer extraction, math-verify equivalence, hostile input, worker threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from perception_verl.rewards.accuracy import (
    MAX_ANSWER_CHARS,
    AccuracyResult,
    accuracy_reward,
    clean_text,
    extract_answer,
    extract_boxed,
)


def formatted(answer: str, think: str = "reasoning") -> str:
    return f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"


# --- extract_answer -------------------------------------------------------------------------------


def test_extract_answer_takes_the_block_content():
    assert extract_answer(formatted("\\boxed{3}")) == "\n\\boxed{3}\n"


def test_extract_answer_falls_back_to_whole_response():
    assert extract_answer("no tags, \\boxed{3}") == "no tags, \\boxed{3}"
    assert extract_answer("") == ""


def test_extract_answer_last_complete_block_wins():
    response = "<answer>first</answer> text <answer>second</answer> <answer>unclosed"
    assert extract_answer(response) == "second"


def test_extract_answer_nested_tags_give_the_innermost_block():
    assert extract_answer("<answer>outer <answer>inner</answer></answer>") == "inner"


# --- extract_boxed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\sqrt{\\frac{a}{b}}} end", "\\sqrt{\\frac{a}{b}}"),
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1} then \\boxed{2", "1"),
        ("\\boxed {7}", "7"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{}", ""),
        ("plain 3", None),
        ("\\boxed{unclosed", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_extract_boxed_with_thousands_of_unclosed_openings():
    assert extract_boxed("\\boxed{" * 20_000 + "\\boxed{5}") == "5"
    assert extract_boxed("\\boxed{" * 20_000 + "}") == ""
    assert extract_boxed("\\boxed{" * 20_000) is None


# --- equivalence through math-verify -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "ground_truth"),
    [
        ("\\boxed{0.75}", "\\frac{3}{4}"),
        ("\\boxed{\\frac{3}{4}}", "0.75"),
        ("\\boxed{71^\\circ}", "71"),
        ("\\boxed{71^{\\circ}}", "71"),
        ("\\boxed{71°}", "71"),
        ("\\boxed{71 \\degree}", "71^\\circ"),
        ("\\boxed{\\angle ABC = 71^\\circ}", "71"),
        ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("\\boxed{2}", "x=2"),
        ("\\boxed{x = 2}", "x=2"),
        ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}"),
        ("\\boxed{12 \\text{ cm}}", "12"),
        ("\\boxed{3}", "$3$"),
        ("\\boxed{3}", "\\boxed{3}"),
    ],
)
def test_equivalent_answers_score_one(answer, ground_truth):
    result = accuracy_reward(formatted(answer), ground_truth)
    assert result == AccuracyResult(1.0, "correct", extract_boxed(answer))


@pytest.mark.parametrize(
    ("answer", "ground_truth"),
    [("\\boxed{0.7}", "\\frac{3}{4}"), ("\\boxed{72}", "71"), ("\\boxed{x=3}", "x=2"), ("\\boxed{B}", "A")],
)
def test_different_answers_score_zero(answer, ground_truth):
    result = accuracy_reward(formatted(answer), ground_truth)
    assert (result.score, result.reason) == (0.0, "mismatch")


def test_answer_block_is_preferred_over_earlier_boxed_text():
    response = "<think>\nmaybe \\boxed{5}\n</think>\n<answer>\n\\boxed{7}\n</answer>"
    assert accuracy_reward(response, "7").score == 1.0
    assert accuracy_reward(response, "5").score == 0.0


def test_duplicated_answer_blocks_use_the_last_one():
    response = "<answer>\\boxed{4}</answer><answer>\\boxed{5}</answer>"
    assert accuracy_reward(response, "5").reason == "correct"
    assert accuracy_reward(response, "4").reason == "mismatch"


def test_unboxed_answer_text_is_compared():
    assert accuracy_reward("<answer>71</answer>", "71").score == 1.0


def test_no_tags_uses_the_whole_response():
    result = accuracy_reward("so the result is \\boxed{\\frac{1}{2}}", "0.5")
    assert (result.score, result.predicted) == (1.0, "\\frac{1}{2}")


# --- edge and hostile inputs ----------------------------------------------------------------------


@pytest.mark.parametrize("response", ["", "   \n\t", "<answer></answer>", "<answer>\\boxed{}</answer>"])
def test_empty_answers_are_no_answer(response):
    assert accuracy_reward(response, "3") == AccuracyResult(0.0, "no_answer", "")


def test_garbage_is_unparsable_not_an_error():
    result = accuracy_reward("<answer>\\boxed{\\frac{}{}}{{</answer>", "3")
    assert result.score == 0.0
    assert result.reason in {"unparsable", "mismatch"}


def test_fifty_thousand_characters():
    filler = "word " * 10_000
    assert len(filler) == 50_000
    assert accuracy_reward(formatted("\\boxed{42}", think=filler), "42").reason == "correct"
    result = accuracy_reward(filler, "42")
    assert result.score == 0.0
    assert len(result.predicted) <= MAX_ANSWER_CHARS
    assert accuracy_reward("<answer>\\boxed{" + "1" * 50_000 + "}</answer>", "1").reason == "too_long"


def test_lone_surrogates_and_control_characters_do_not_crash():
    assert clean_text("a\ud800b\x00c\x1bd\ne") == "a?b c d\ne"
    assert accuracy_reward(formatted("\\boxed{3}\ud800"), "3").score == 1.0
    assert accuracy_reward(formatted("\\boxed{3\x00\x07}"), "3").score == 1.0
    result = accuracy_reward("\ud800\udfff\x00" * 1000, "3\ud800")
    assert result.score == 0.0
    result.predicted.encode("utf-8")  # what comes back is always encodable


@pytest.mark.parametrize("value", [None, 3, b"\\boxed{3}", ["\\boxed{3}"]])
def test_non_text_input_gives_an_error_reason(value):
    assert accuracy_reward(value, "3").reason.startswith("error:")
    assert accuracy_reward("\\boxed{3}", value).reason.startswith("error:")


@pytest.mark.parametrize("ground_truth", ["", "   ", "$$"])
def test_empty_ground_truth(ground_truth):
    assert accuracy_reward("\\boxed{3}", ground_truth) == AccuracyResult(0.0, "bad_ground_truth", "3")


@pytest.mark.parametrize(
    "answer",
    ["9^{9^{9}}", "10^{10^{10}}", "2^{10^{7}}", "(10^{400})^{400}", "1000000!", "\\frac{1}{10^{200000}}"],
)
def test_values_too_large_to_compare_are_refused(answer):
    assert accuracy_reward(f"\\boxed{{{answer}}}", "3") == AccuracyResult(0.0, "too_large", answer)


@pytest.mark.parametrize(
    "answer",
    ["{" * 20 + "1" + "}" * 20, "(" * 12 + "1" + ")" * 12, "|1" * 40 + "|", "\\vert x" * 12],
)
def test_inputs_that_stall_the_latex_parser_are_refused(answer):
    assert accuracy_reward(f"\\boxed{{{answer}}}", "1").reason == "too_complex"


@pytest.mark.parametrize(
    "answer",
    [
        "e^{e^{e^{e^{e^{e}}}}}",
        "e^{e^{e^{e}}}",
        "\\pi^{\\pi^{\\pi^{\\pi}}}",
        "\\mathrm{e}^{\\mathrm{e}^{\\mathrm{e}^{\\mathrm{e}}}}",
        "\\exp(\\exp(\\exp(\\exp(10))))",
        "\\cosh(\\cosh(\\cosh(\\cosh(9))))",
        "10^{\\pi^{\\pi^{\\pi}}}",
    ],
)
def test_towers_of_symbolic_constants_are_refused(answer):
    assert accuracy_reward(f"\\boxed{{{answer}}}", "7") == AccuracyResult(0.0, "too_large", answer)


@pytest.mark.parametrize(
    ("answer", "ground_truth"),
    [("2\\pi", "2\\pi"), ("e^{2}", "e^2"), ("\\frac{\\pi}{2}", "\\pi/2"), ("e^{e^{e}}", "e^{e^{e}}")],
)
def test_answers_with_constants_are_still_compared(answer, ground_truth):
    assert accuracy_reward(f"\\boxed{{{answer}}}", ground_truth).score == 1.0


def test_large_but_tractable_numbers_are_still_compared():
    assert accuracy_reward("\\boxed{2^{1000}}", "2^{1000}").score == 1.0
    assert accuracy_reward("\\boxed{10^{-5}}", "0.00001").score == 1.0
    assert accuracy_reward("\\boxed{3^{99999}}", "1").reason == "mismatch"


def test_moderate_nesting_is_still_compared():
    assert accuracy_reward("\\boxed{\\left(\\frac{\\sqrt{4}}{2}\\right)}", "1").score == 1.0
    assert accuracy_reward("\\boxed{|-3|}", "3").score == 1.0


# --- threads -------------------------------------------------------------------------------------

THREAD_CASES = [
    ("\\boxed{0.75}", "\\frac{3}{4}", 1.0),
    ("\\boxed{71^\\circ}", "71", 1.0),
    ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("\\boxed{2}", "x=2", 1.0),
    ("\\boxed{5}", "6", 0.0),
    ("\\boxed{9^{9^{9}}}", "1", 0.0),
    ("nothing", "1", 0.0),
]


def _score_in_worker(case: tuple[str, str, float]) -> tuple[float, bool]:
    response, ground_truth, _ = case
    in_main_thread = threading.current_thread() is threading.main_thread()
    return accuracy_reward(response, ground_truth).score, in_main_thread


def test_works_from_worker_threads():
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_score_in_worker, THREAD_CASES * 3))
    assert [score for score, _ in results] == [expected for _, _, expected in THREAD_CASES * 3]
    assert not any(in_main for _, in_main in results)


def test_identical_text_is_correct_without_math_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    from perception_verl.rewards import accuracy as module

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("math-verify should not be asked about identical text")

    monkeypatch.setattr(module, "parse", refuse)
    result = accuracy_reward("<answer>\n\\boxed{ 2\\sqrt{3} }\n</answer>", "$2\\sqrt{3}$")
    assert (result.score, result.reason) == (1.0, "correct")


def test_gold_parse_is_reused_across_a_group() -> None:
    from perception_verl.rewards import accuracy as module

    module._parse_gold.cache_clear()
    for answer in ("3", "4", "0.75", "3/4"):
        accuracy_reward(f"<answer>\n\\boxed{{{answer}}}\n</answer>", "\\frac{3}{4}")
    info = module._parse_gold.cache_info()
    assert (info.misses, info.hits) == (1, 3)
