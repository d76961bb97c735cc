"""McNemar's test: hand-checkable p-values, label pairing, bad label files, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.analysis.labels import (
    ContingencyTable,
    LabelFileError,
    pair_labels,
    parse_label_lines,
    read_labels,
)
from perception_verl.analysis.mcnemar import main, mcnemar_p_value, mcnemar_table, mcnemar_test

REPO = Path(__file__).resolve().parents[1]


def hand_exact_p(b: int, c: int) -> float:
    """p = min(1, 2 * P[X <= min(b, c)]), X ~ Bin(b + c, 1/2), summed by hand with exact integers."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- the test itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["exact", "chi2"])
def test_no_discordant_pairs_gives_p_one(method: str) -> None:
    result = mcnemar_test(0, 0, method=method)
    assert result.p_value == 1.0
    assert result.n_discordant == 0
    assert not result.significant(0.05)
    assert result.direction == "none"


def test_single_discordant_pair_is_p_one() -> None:
    # Bin(1, 1/2): P[X <= 0] = 1/2, doubled = 1.
    assert mcnemar_test(1, 0).p_value == 1.0
    assert mcnemar_test(0, 1).p_value == 1.0


def test_six_to_zero_is_two_over_sixty_four() -> None:
    result = mcnemar_test(0, 6)
    assert result.p_value == pytest.approx(2 / 64, abs=1e-12)
    assert result.statistic == 0.0
    assert result.significant(0.05)
    assert not result.significant(0.01)
    assert result.direction == "B"
    assert mcnemar_test(6, 0).direction == "A"
    assert mcnemar_test(6, 0).p_value == pytest.approx(result.p_value, abs=1e-15)


@pytest.mark.parametrize(
    ("b", "c"),
    [(0, 1), (1, 1), (2, 5), (3, 3), (5, 2), (0, 10), (4, 11), (10, 25), (17, 20), (30, 12), (60, 90)],
)
def test_exact_equals_hand_binomial_sum(b: int, c: int) -> None:
    # scipy's two-sided binomtest at p = 1/2 is symmetric, so it equals the doubled lower tail.
    assert mcnemar_p_value(b, c, "exact")[1] == pytest.approx(hand_exact_p(b, c), rel=1e-9, abs=1e-15)


def test_chi2_matches_hand_formula() -> None:
    # (|3 - 12| - 1)^2 / 15 = 64/15; chi2(1) survival = erfc(sqrt(x / 2)).
    statistic, p_value = mcnemar_p_value(3, 12, "chi2")
    assert statistic == pytest.approx(64 / 15)
    assert p_value == pytest.approx(math.erfc(math.sqrt(64 / 15 / 2)), rel=1e-12)


def test_chi2_tie_is_p_one() -> None:
    # the continuity correction is clamped at zero: b == c carries no evidence either way
    assert mcnemar_p_value(5, 5, "chi2") == (0.0, 1.0)
    assert mcnemar_p_value(5, 6, "chi2") == (0.0, 1.0)


def test_large_counts_exact_and_chi2_agree() -> None:
    exact = mcnemar_test(400, 480, method="exact")
    approx = mcnemar_test(400, 480, method="chi2")
    assert approx.statistic == pytest.approx(79**2 / 880)
    assert exact.p_value == pytest.approx(hand_exact_p(400, 480), rel=1e-9)
    # both about 0.0077: within 1 % of each other at these counts
    assert approx.p_value == pytest.approx(exact.p_value, rel=0.01)
    assert 0.005 < exact.p_value < 0.01


def test_small_counts_exact_and_chi2_differ() -> None:
    # the reason exact is the default: at 0 vs 6 the approximation is visibly off
    assert mcnemar_test(0, 6, method="chi2").p_value == pytest.approx(math.erfc(math.sqrt(25 / 6 / 2)))
    assert mcnemar_test(0, 6, method="chi2").p_value > 1.3 * mcnemar_test(0, 6).p_value


@pytest.mark.parametrize(
    ("b", "c", "method"), [(-1, 2, "exact"), (1, 2.5, "exact"), (True, 2, "exact"), (1, 2, "fisher")]
)
def test_bad_counts_and_method_raise(b: object, c: object, method: str) -> None:
    with pytest.raises(ValueError):
        mcnemar_p_value(b, c, method)  # type: ignore[arg-type]


def test_full_table_keeps_concordant_cells() -> None:
    result = mcnemar_table(ContingencyTable(both_correct=30, b=2, c=9, both_wrong=9))
    assert (result.b, result.c, result.n_discordant) == (2, 9, 11)
    assert result.table.n_pairs == 50
    assert result.p_value == pytest.approx(hand_exact_p(2, 9))


# --- labels ----------------------------------------------------------------------------------


def test_pairing_counts_every_cell_and_reports_unpaired() -> None:
    a = {"p1": True, "p2": True, "p3": False, "p4": False, "p5": True, "only-a": True, 7: False}
    b = {"p1": True, "p2": False, "p3": True, "p4": False, "p5": False, "only-b": False, "7": True}
    paired = pair_labels(a, b)
    assert paired.table == ContingencyTable(both_correct=1, b=2, c=1, both_wrong=1)
    # int 7 and string "7" are different ids: reported, not joined
    assert paired.only_a == ("only-a", 7)
    assert paired.only_b == ("only-b", "7")
    assert paired.n_unpaired == 4


def test_duplicate_id_is_an_error_naming_id_and_lines() -> None:
    lines = ['{"id": "x", "correct": true}', '{"id": "y", "correct": false}', '{"id": "x", "correct": false}']
    with pytest.raises(LabelFileError, match=r"a\.jsonl:3: duplicate id 'x' \(first seen on line 1\)"):
        parse_label_lines(lines, source="a.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": 1, "correct": "yes"}', r"f:2: 'correct' must be true or false, got 'yes'"),
        ('{"id": 1, "correct": 1}', r"f:2: 'correct' must be true or false, got 1"),
        ('{"id": 1}', r"f:2: missing key 'correct'"),
        ('{"correct": true}', r"f:2: missing key 'id'"),
        ('{"id": null, "correct": true}', r"f:2: 'id' must be a string or an integer"),
        ('{"id": [1], "correct": true}', r"f:2: 'id' must be a string or an integer"),
        ("[1, true]", r"f:2: expected a JSON object"),
        ('{"id": 1, "correct": tru', r"f:2: not valid JSON"),
    ],
)
def test_bad_rows_name_the_line(line: str, message: str) -> None:
    with pytest.raises(LabelFileError, match=message):
        parse_label_lines(['{"id": 0, "correct": true}', line], source="f")


def test_read_labels_skips_blank_lines_and_ignores_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": 1, "correct": true, "perception": 1.0}\n\n{"id": "b", "correct": false}\n')
    assert read_labels(path) == {1: True, "b": False}


def test_missing_file_is_a_label_error(tmp_path: Path) -> None:
    with pytest.raises(LabelFileError, match=r"missing\.jsonl"):
        read_labels(tmp_path / "missing.jsonl")


# --- CLI ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perception_verl.analysis.mcnemar", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_counts_json_subprocess() -> None:
    proc = run_cli("--counts", "0", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["b"], out["c"], out["method"], out["alpha"]) == (0, 6, "exact", 0.05)
    assert out["p_value"] == pytest.approx(2 / 64)
    assert out["significant"] is True
    assert out["direction"] == "B"
    assert out["table"]["a_wrong_b_correct"] == 6
    assert out["table"]["both_correct"] is None
    assert (out["unpaired_a"], out["unpaired_b"]) == (0, 0)


def test_cli_labels_json_subprocess(tmp_path: Path) -> None:
    # 50 shared problems: 30 both right, 2 A-only, 9 B-only, 9 both wrong; plus unpaired ids
    rows_a, rows_b = [], []
    cells = [(True, True)] * 30 + [(True, False)] * 2 + [(False, True)] * 9 + [(False, False)] * 9
    for index, (correct_a, correct_b) in enumerate(cells):
        rows_a.append({"id": f"q{index}", "correct": correct_a})
        rows_b.append({"id": f"q{index}", "correct": correct_b})
    rows_a.append({"id": "extra-a", "correct": True})
    rows_b += [{"id": "extra-b1", "correct": True}, {"id": "extra-b2", "correct": False}]
    a = write_jsonl(tmp_path / "a.jsonl", rows_a)
    b = write_jsonl(tmp_path / "b.jsonl", rows_b[::-1])
    proc = run_cli("--labels-a", str(a), "--labels-b", str(b), "--json", "--method", "chi2", "--alpha", "0.1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["table"] == {
        "both_correct": 30,
        "a_correct_b_wrong": 2,
        "a_wrong_b_correct": 9,
        "both_wrong": 9,
    }
    assert (out["b"], out["c"], out["n_pairs"]) == (2, 9, 50)
    assert out["p_value"] == pytest.approx(math.erfc(math.sqrt(36 / 11 / 2)))
    assert (out["method"], out["alpha"], out["significant"]) == ("chi2", 0.1, True)
    assert (out["unpaired_a"], out["unpaired_b"]) == (1, 2)
    assert out["unpaired_a_examples"] == ["extra-a"]
    assert sorted(out["unpaired_b_examples"]) == ["extra-b1", "extra-b2"]

    human = run_cli("--labels-a", str(a), "--labels-b", str(b))
    assert human.returncode == 0, human.stderr
    assert "paired problems: 50" in human.stdout
    assert "unpaired: 1 ids only in A" in human.stdout
    assert "unpaired: 2 ids only in B" in human.stdout
    assert "b (A right, B wrong) = 2, c (A wrong, B right) = 9" in human.stdout
    # exact p = 2 * P[Bin(11, 1/2) <= 2] = 0.0654: not significant at the default 0.05
    assert "p-value (exact binomial, two-sided): 0.0654297" in human.stdout
    assert "no significant change in perception at alpha = 0.05" in human.stdout
    human = run_cli("--labels-a", str(a), "--labels-b", str(b), "--alpha", "0.1")
    assert "significantly at alpha = 0.1: B is perception-correct more often than A" in human.stdout

    strict = run_cli("--labels-a", str(a), "--labels-b", str(b), "--strict")
    assert strict.returncode == 2
    assert "1 ids only in" in strict.stderr


def test_cli_duplicate_id_fails_with_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "correct": True}, {"id": 1, "correct": False}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": 1, "correct": True}])
    assert main(["--labels-a", str(a), "--labels-b", str(b), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "a.jsonl:2: duplicate id 1" in captured.err


def test_cli_human_report_not_significant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--counts", "1", "0"]) == 0
    out = capsys.readouterr().out
    assert "p-value (exact binomial, two-sided): 1" in out
    assert "no significant change in perception at alpha = 0.05" in out


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--labels-a", "a.jsonl"])
    assert exc.value.code == 2
    assert "--labels-a needs --labels-b" in capsys.readouterr().err
    assert main(["--counts", "-1", "3"]) == 2
    assert "b must be a non-negative integer" in capsys.readouterr().err
