"""Strict verdict parser: good answers and each typed failure."""

from __future__ import annotations

import pytest

from perception_verl.judge.verdict import VERDICT_ERROR_KINDS, VerdictError, parse_verdicts


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("<info1>1</info1>", 1, (1,)),
        ("<info1>1</info1><info2>0</info2><info3>1</info3>", 3, (1, 0, 1)),
        ("<info1>0</info1>\n<info2>1</info2>\n", 2, (0, 1)),
        ("  <info1> 1 </info1>   <info2>\n0\n</info2>", 2, (1, 0)),
        ("<info2>0</info2> <info1>1</info1>", 2, (1, 0)),
        ("Here are my verdicts:\n<info1>1</info1> <info2>1</info2>", 2, (1, 1)),
        ("```\n<info1>0</info1> <info2>0</info2>\n```", 2, (0, 0)),
    ],
)
def test_good_answers(text: str, n: int, expected: tuple[int, ...]) -> None:
    assert parse_verdicts(text, n) == expected


@pytest.mark.parametrize(
    ("text", "n", "kind"),
    [
        ("", 2, "missing_tags"),
        ("1 0", 2, "missing_tags"),
        ("The first fact is present, the second is not.", 2, "missing_tags"),
        ("<info1>1<info2>0", 2, "missing_tags"),
        ("<info1>1</info1>", 2, "wrong_count"),
        ("<info1>1</info1><info2>0</info2><info3>1</info3>", 2, "wrong_count"),
        ("<info1>1</info1><info2>0</info2><info3>", 2, "wrong_count"),
        ("<info0>1</info0><info1>1</info1><info2>0</info2>", 2, "wrong_count"),
        ("<info1>1</info1><info2>0</info2><info2>1", 3, "wrong_count"),
        ("<info1>1</info2><info2>0</info2>", 2, "wrong_count"),
        ("<info1>1</info1><info1>0</info1>", 2, "duplicate_tag"),
        ("<info1>1</info1><info2>0</info2><info2>0</info2>", 2, "duplicate_tag"),
        ("<info1>yes</info1><info2>0</info2>", 2, "non_binary"),
        ("<info1>1</info1><info2>0.5</info2>", 2, "non_binary"),
        ("<info1>1</info1><info2></info2>", 2, "non_binary"),
        ("<info1>1</info1><info2>01</info2>", 2, "non_binary"),
        ("<info1>1 0</info1><info2>1</info2>", 2, "non_binary"),
        # Only the exact ASCII form is a tag: case, inner spaces, look-alikes and other digits are not.
        ("< info1 >1</ info1 > <INFO2>0</Info2 >", 2, "missing_tags"),
        ("<INFO1>1</INFO1>", 1, "missing_tags"),
        ("<\u0131nfo1>1</\u0131nfo1>", 1, "missing_tags"),  # dotless i
        ("<\u0130NFO1>1</\u0130NFO1>", 1, "missing_tags"),  # dotted capital I
        ("<\u0456nfo1>1</\u0456nfo1>", 1, "missing_tags"),  # Cyrillic i
        ("<inf\u03bf1>1</inf\u03bf1>", 1, "missing_tags"),  # Greek omicron
        ("\uff1cinfo1\uff1e1\uff1c/info1\uff1e", 1, "missing_tags"),  # full-width brackets
        ("<info\u0661>1</info\u0661>", 1, "missing_tags"),  # Arabic-Indic digit one
        ("<info\uff11>1</info\uff11>", 1, "missing_tags"),  # full-width digit one
        ("<info1>1</info1><INFO2>1</INFO2>", 2, "wrong_count"),
        ("<info1>\uff11</info1>", 1, "non_binary"),  # full-width value
        ("<info1>\u20031</info1>", 1, "non_binary"),  # em space is not ASCII whitespace
        ("<info1>\u0661</info1>", 1, "non_binary"),
    ],
)
def test_failures_are_typed(text: str, n: int, kind: str) -> None:
    with pytest.raises(VerdictError) as caught:
        parse_verdicts(text, n)
    assert caught.value.kind == kind
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(kind)


def test_error_kinds_are_the_contract() -> None:
    assert set(VERDICT_ERROR_KINDS) == {"missing_tags", "wrong_count", "non_binary", "duplicate_tag"}
    with pytest.raises(ValueError):
        VerdictError("other", "not a kind")


def test_n_must_be_positive() -> None:
    with pytest.raises(ValueError):
        parse_verdicts("<info1>1</info1>", 0)
