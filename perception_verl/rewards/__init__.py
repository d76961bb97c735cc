"""Pure reward functions of Perception-R1: accuracy, format, perception, repetition, and their total."""

from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward, extract_answer
from perception_verl.rewards.format import format_reward
from perception_verl.rewards.perception import perception_reward
from perception_verl.rewards.repetition import repetition_penalty
from perception_verl.rewards.total import RewardBreakdown, RewardWeights, score_response

__all__ = [
    "AccuracyResult",
    "RewardBreakdown",
    "RewardWeights",
    "accuracy_reward",
    "extract_answer",
    "format_reward",
    "perception_reward",
    "repetition_penalty",
    "score_response",
]
