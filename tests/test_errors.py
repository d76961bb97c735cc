"""Every error class of the package derives from PerceptionVerlError and keeps its built-in base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import perception_verl
from perception_verl.errors import MissingFieldError, PerceptionVerlError
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text

# Each edge's class and the built-in base existing except clauses rely on.
KEPT_BASES = {
    "perception_verl.config.RewardConfigError": ValueError,
    "perception_verl.rewards.ground_truth.GroundTruthError": ValueError,
    "perception_verl.client.errors.ChatError": RuntimeError,
    "perception_verl.client.errors.JudgeUnavailable": RuntimeError,
    "perception_verl.client.dialects.DialectError": RuntimeError,
    "perception_verl.judge.verdict.VerdictError": ValueError,
    "perception_verl.data.annotations.AnnotationError": ValueError,
    "perception_verl.data.images.ImageDataError": ValueError,
    "perception_verl.data.images.MissingImageError": ValueError,
    "perception_verl.data.schema.RowError": ValueError,
    "perception_verl.data.loading.SourceError": ValueError,
    "perception_verl.annotate.extract.ExtractionError": ValueError,
    "perception_verl.annotate.store.StoreError": RuntimeError,
    "perception_verl.analysis.generations.GenerationFileError": ValueError,
    "perception_verl.analysis.labels.LabelFileError": ValueError,
    "perception_verl.evaluation.dumps.DumpError": ValueError,
    "perception_verl.evaluation.report.MetricsFileError": ValueError,
    "perception_verl.evaluation.score._JudgeUnavailable": RuntimeError,
    "perception_verl.data.wemath_keys.WeMathError": ValueError,
    "perception_verl.launch.compose.ComposeError": ValueError,
    "perception_verl.workers.pool.CheckTimeout": Exception,
    "perception_verl.workers.pool.CheckCrashed": Exception,
    "perception_verl.errors.MissingFieldError": KeyError,
    "perception_verl.scorer.core.JudgeFailedError": RuntimeError,
    "perception_verl.score.InputError": ValueError,
    "perception_verl.score.JudgeStartError": RuntimeError,
    "perception_verl.analysis.label_perception.JudgeStartError": RuntimeError,
}


def package_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the package, by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(perception_verl.__path__, "perception_verl."):
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_package_error_derives_from_the_base() -> None:
    errors = package_errors()
    assert set(KEPT_BASES) <= set(errors), "a listed class moved; update KEPT_BASES"
    strays = sorted(name for name, cls in errors.items() if not issubclass(cls, PerceptionVerlError))
    assert strays == []


@pytest.mark.parametrize("name", sorted(KEPT_BASES))
def test_each_error_keeps_its_builtin_base(name: str) -> None:
    cls = package_errors()[name]
    assert issubclass(cls, PerceptionVerlError)
    assert issubclass(cls, KEPT_BASES[name])


def test_a_missing_ground_truth_is_a_project_error() -> None:
    with pytest.raises(GroundTruthError) as caught:
        ground_truth_text(None)
    assert caught.value.missing
    assert isinstance(caught.value, PerceptionVerlError)


def test_missing_field_error_is_a_key_error_with_a_plain_message() -> None:
    with pytest.raises(KeyError) as caught:
        raise MissingFieldError("sample 3 has no reward_model.ground_truth")
    assert str(caught.value) == "sample 3 has no reward_model.ground_truth"
    assert isinstance(caught.value, PerceptionVerlError)
