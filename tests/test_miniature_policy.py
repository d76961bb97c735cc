"""The miniature's starting policy: the depth override and the copy pre-training (the stand-in for
pretraining) on a real tiny Qwen2.5-VL, CPU, seconds."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from perception_verl_demo.fast_vl import pretrain_copy  # noqa: E402
from perception_verl_demo.vl_policy import TEXT_SHAPE, build_vl_policy  # noqa: E402

NAMES = zip("BCDE", "FGHJ", "KLMN", range(3, 7), strict=True)
CORPUS = [f"Triangle {a}{b}{c} has {a}{b} = {n}." for a, b, c, n in NAMES]


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy")
    build_vl_policy(out, CORPUS, seed=0, layers=3)
    return out


def _state(out):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out), dtype=torch.float32)
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_layers_override_only_the_text_depth(policy) -> None:
    config = json.loads((policy / "config.json").read_text())
    text = config["text_config"]
    assert text["num_hidden_layers"] == 3 != TEXT_SHAPE["num_hidden_layers"]
    assert text["hidden_size"] == TEXT_SHAPE["hidden_size"]
    assert text["num_key_value_heads"] == TEXT_SHAPE["num_key_value_heads"]


def test_copy_pretraining_learns_to_repeat_and_leaves_the_vision_tower(policy) -> None:
    before = _state(policy)
    pool = list(range(20, 50))
    summary = pretrain_copy(policy, pool, steps=150, lr=3e-3, batch_size=16, span=(4, 6))
    after = _state(policy)
    assert summary["copy_steps"] == 150
    # below the loss of a guess over the pool: the repeat is read from the context
    assert summary["copy_last_loss"] < 0.8 * math.log(len(pool)) < summary["copy_first_loss"]
    visual = [name for name in before if "visual" in name]
    assert visual and all(torch.equal(before[name], after[name]) for name in visual)
    assert not torch.equal(
        before["model.language_model.layers.0.self_attn.q_proj.weight"],
        after["model.language_model.layers.0.self_attn.q_proj.weight"],
    )


def test_copy_pretraining_refuses_an_empty_pool(policy) -> None:
    with pytest.raises(ValueError, match="token ids"):
        pretrain_copy(policy, [], steps=1, lr=1e-3)


def test_copy_pretraining_stops_at_its_target_loss(policy) -> None:
    summary = pretrain_copy(
        policy, list(range(20, 50)), steps=400, lr=1e-3, target_loss=100.0, anneal_steps=10, batch_size=4
    )
    assert summary["copy_anneal_from"] == 50 and summary["copy_steps"] == 60
    assert summary["copy_max_steps"] == 400


def test_small_alphabet_rows_repeat_their_tokens() -> None:
    from perception_verl_demo.fast_vl import _copy_draw

    pool = torch.arange(100, 400)
    draw = _copy_draw(pool, 8, 40, 0.5, torch.Generator().manual_seed(0))
    assert draw.shape == (8, 40) and bool(torch.isin(draw, pool).all())
    distinct = [len(set(row.tolist())) for row in draw]
    # the first half draws from 3 to 8 tokens each; the rest from the whole pool (40 draws of 300)
    assert all(n <= 8 for n in distinct[:4]) and all(n > 20 for n in distinct[4:])
    assert all(len(set(row.tolist())) > 20 for row in _copy_draw(pool, 4, 40, 0.0, torch.Generator()))
