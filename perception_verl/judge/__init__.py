"""Perception judge: prompt building, response sanitising, verdict parsing and judge backends."""

from perception_verl.judge.base import Judge, JudgeResult
from perception_verl.judge.lexical import LexicalJudge, lexical_verdicts
from perception_verl.judge.prompt import build_messages, verdict_regex
from perception_verl.judge.sanitize import sanitize_response
from perception_verl.judge.verdict import VerdictError, parse_verdicts

__all__ = [
    "Judge",
    "JudgeResult",
    "LexicalJudge",
    "VerdictError",
    "build_messages",
    "lexical_verdicts",
    "parse_verdicts",
    "sanitize_response",
    "verdict_regex",
]
