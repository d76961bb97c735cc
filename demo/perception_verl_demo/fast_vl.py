"""Batched warm-up and KV-cached sampling of the tiny Qwen2.5-VL policy, for the miniature's 200 problems.

:mod:`perception_verl_demo.vl_policy` warms and samples one sequence at a time and runs the vision tower
at every forward; on a shared 2-core machine that is ~0.25 s a training sequence and a vision pass per
sampled token, too slow for 800 warm-up responses and a step-0 sample. The same model, inputs and
positions here, faster:

- the vision tower runs once per problem (kept frozen during the warm-up: the tiny policy reads no
  digits from a figure either way), and its features replace the image tokens' embeddings exactly as
  the model's own forward does (checked to give identical logits);
- the text model is trained on padded batches under verl's M-RoPE positions
  (:func:`perception_verl_demo.vl_policy.positions`, per sequence);
- sampling keeps a KV cache and draws ``n`` responses to one prompt as one batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _load(out: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(str(out))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out), dtype=torch.float32)
    return processor, model


def image_features(model: Any, encoded: dict) -> Any:
    """The vision tower's output for the prompt's images: one row per image token, (tokens, H)."""
    import torch

    with torch.no_grad():
        features = model.model.get_image_features(encoded["pixel_values"], encoded["image_grid_thw"])
        features = getattr(features, "pooler_output", features)
        if isinstance(features, (list, tuple)):
            features = torch.cat(list(features))
    return features


def embed_with_images(model: Any, input_ids: Any, features: Any) -> Any:
    """Input embeddings of ``input_ids`` (current embedding weights) with ``features`` in place of the
    image tokens, as the model's own forward builds them."""
    embeds = model.model.get_input_embeddings()(input_ids)
    mask = (input_ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
    return embeds.masked_scatter(mask, features.to(embeds.dtype))


def prompt_embeddings(model: Any, encoded: dict) -> Any:
    """The prompt's input embeddings with the image features in place of the image tokens, (1, L, H)."""
    import torch

    with torch.no_grad():
        return embed_with_images(model, encoded["input_ids"], image_features(model, encoded))


def _report(what: str, step: int, steps: int, losses: Sequence[float]) -> None:
    """Log progress ten times over a run: step and the mean loss of the last 20 steps."""
    if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
        tail = losses[-20:]
        logger.info("%s: step %d/%d, loss %.3f", what, step + 1, steps, sum(tail) / len(tail))


def warm_up_cached(
    out: Path, examples: Sequence[Any], *, steps: int, lr: float, batch_size: int = 32, seed: int = 0
) -> dict:
    """Weighted supervised warm-up of the policy at ``out`` (saved in place), in padded batches.

    ``examples`` are :class:`perception_verl_demo.vl_policy.WarmupExample`; each step draws
    ``batch_size`` of them in proportion to their weight and takes one AdamW step on the mean response
    NLL (gradient clip 1.0). The vision tower is frozen and run once per distinct prompt.
    """
    import torch

    from perception_verl_demo.vl_policy import encode, positions

    if not examples:
        raise ValueError("warm_up_cached needs at least one example")
    processor, model = _load(Path(out))
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    draw = random.Random(seed)
    cache: dict[tuple, tuple[Any, Any]] = {}
    items = []
    for example in examples:
        key = (json.dumps(example.prompt, sort_keys=True), tuple(example.images))
        if key not in cache:
            encoded = encode(processor, example.prompt, example.images, model)
            cache[key] = (encoded, image_features(model, encoded))
        encoded, features = cache[key]
        answer = tokenizer(example.response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        answer_ids = torch.tensor([answer])
        ids = torch.cat([encoded["input_ids"], answer_ids], dim=1)
        types = torch.cat([encoded["mm_token_type_ids"], torch.zeros_like(answer_ids)], dim=1)
        pos = positions(model, ids, encoded["image_grid_thw"], types)[:, 0]
        items.append((ids[0], encoded["input_ids"].shape[1], features, pos))
    for parameter in model.model.visual.parameters():
        parameter.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    weights = [example.weight for example in examples]
    pad = tokenizer.pad_token_id
    model.train()
    losses: list[float] = []
    for step in range(steps):
        batch = [items[i] for i in draw.choices(range(len(items)), weights=weights, k=batch_size)]
        length = max(ids.shape[0] for ids, _, _, _ in batch)
        input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
        labels = torch.full((len(batch), length), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        position_ids = torch.ones((4, len(batch), length), dtype=torch.long)
        for row, (ids, n_prompt, _, pos) in enumerate(batch):
            n = ids.shape[0]
            input_ids[row, :n] = ids
            labels[row, n_prompt:n] = ids[n_prompt:]
            mask[row, :n] = 1
            position_ids[:, row, :n] = pos
        inputs = embed_with_images(model, input_ids, torch.cat([features for _, _, features, _ in batch]))
        loss = model(inputs_embeds=inputs, attention_mask=mask, position_ids=position_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        _report("warm-up", step, steps, losses)
    for parameter in model.model.visual.parameters():
        parameter.requires_grad_(True)
    model.eval()
    model.save_pretrained(str(out))
    tail = losses[-max(1, min(20, steps)) :]
    return {
        "examples": len(examples),
        "prompts": len(cache),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "vision_tower": "frozen",
        "first_loss": losses[0] if losses else None,
        "last_loss": sum(tail) / len(tail) if losses else None,
    }


def _copy_lr_factor(step: int, anneal_from: int | None, anneal_steps: int) -> float:
    """The copy pre-training's learning-rate factor: a 100-step linear warm-up, then 1 until the anneal
    starts at ``anneal_from``, then a cosine decay to 0 over ``anneal_steps`` (pure)."""
    if anneal_from is None:
        return min(1.0, (step + 1) / 100)
    done = min(step - anneal_from, anneal_steps)
    return 0.5 * (1 + math.cos(math.pi * done / max(1, anneal_steps)))


def pretrain_copy(
    out: Path,
    token_ids: Sequence[int],
    *,
    steps: int,
    lr: float,
    target_loss: float = 0.0,
    anneal_steps: int = 0,
    batch_size: int = 64,
    span: tuple[int, int] = (8, 32),
    small_alphabet: float = 0.0,
    seed: int = 0,
) -> dict:
    """Teach the text model at ``out`` (saved in place) to copy: the stand-in for pretraining.

    A pretrained VLM restates what its prompt says; a random tiny one cannot, and a warm-up on a few
    thousand problems teaches it to half-recall them, not to copy. Each step draws ``batch_size`` random
    spans of ``token_ids`` (length in ``span``) after a 4-token lead and trains the model to repeat the
    span (loss on the repeat only); a ``small_alphabet`` share of the rows draws its span from only 3 to 8
    tokens, so tokens repeat inside it as letters do in ``KBSM ... KB = 10`` and the model must copy by
    position, not by the token before. Text-only positions, AdamW at ``lr`` after a 100-step linear warm-up
    (gradient clip 1.0); the vision tower is not touched. Copying arrives as a sudden drop of the loss
    after a plateau whose length varies with the seed, so once the mean loss of the last 50 steps is under
    ``target_loss`` (or after ``steps``) the run goes on for ``anneal_steps`` with the learning rate
    decaying to 0 (cosine), which settles the skill so the warm-up that follows does not undo it.
    """
    import torch

    if not token_ids:
        raise ValueError("pretrain_copy needs token ids to draw spans from")
    if steps < 1 or anneal_steps < 0:
        raise ValueError(f"pretrain_copy needs steps >= 1 and anneal_steps >= 0, got {steps}, {anneal_steps}")
    _, model = _load(Path(out))
    generator = torch.Generator().manual_seed(seed)
    pool = torch.tensor(sorted(set(token_ids)))
    trainable = [p for name, p in model.named_parameters() if not name.startswith("model.visual.")]
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    lead = 4
    model.train()
    losses: list[float] = []
    anneal_from: int | None = None
    step = 0
    while anneal_from is None or step < anneal_from + anneal_steps:
        for group in optimizer.param_groups:
            group["lr"] = lr * _copy_lr_factor(step, anneal_from, anneal_steps)
        length = int(torch.randint(span[0], span[1] + 1, (1,), generator=generator))
        draw = _copy_draw(pool, batch_size, lead + length, small_alphabet, generator)
        ids = torch.cat([draw, draw[:, lead:]], dim=1)
        labels = torch.full_like(ids, -100)
        labels[:, lead + length :] = ids[:, lead + length :]
        position_ids = torch.arange(ids.shape[1]).view(1, 1, -1).expand(4, batch_size, -1)
        loss = model(input_ids=ids, position_ids=position_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        _report("copy pre-training", step, steps + anneal_steps, losses)
        step += 1
        reached = len(losses) >= 50 and sum(losses[-50:]) / 50 < target_loss
        if anneal_from is None and (reached or step == steps):
            anneal_from = step
            logger.info("copy pre-training: step %d, loss %.3f; annealing %d steps", step, loss, anneal_steps)
    model.eval()
    model.save_pretrained(str(out))
    tail = losses[-max(1, min(50, len(losses))) :]
    return {
        "copy_steps": len(losses),
        "copy_max_steps": steps,
        "copy_anneal_from": anneal_from,
        "copy_lr": lr,
        "copy_target_loss": target_loss,
        "copy_small_alphabet": small_alphabet,
        "copy_first_loss": losses[0] if losses else None,
        "copy_last_loss": sum(tail) / len(tail) if losses else None,
    }


def _copy_draw(pool: Any, rows: int, length: int, small_alphabet: float, generator: Any) -> Any:
    """``rows`` random token rows of ``length`` from ``pool``; the first ``small_alphabet`` share of the
    rows each draw from their own random 3 to 8 tokens of the pool."""
    import torch

    draw = pool[torch.randint(len(pool), (rows, length), generator=generator)]
    for row in range(round(rows * small_alphabet)):
        size = int(torch.randint(3, 9, (1,), generator=generator))
        alphabet = pool[torch.randperm(len(pool), generator=generator)[:size]]
        draw[row] = alphabet[torch.randint(len(alphabet), (length,), generator=generator)]
    return draw


class Sampler:
    """Loads the policy at ``out`` once; :meth:`sample` draws ``n`` responses to a prompt as one batch."""

    def __init__(self, out: Path) -> None:
        self.processor, self.model = _load(Path(out))
        self.model.eval()

    def sample(
        self,
        prompt: Sequence[dict],
        images: Sequence[bytes],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seed: int = 0,
        prefix: str = "",
    ) -> list[str]:
        """``n`` responses (temperature 0: greedy), each up to ``max_new_tokens`` or the end token; with
        a ``prefix``, each response starts with it (forced) and goes on from there."""
        import torch
        from transformers import DynamicCache

        from perception_verl_demo.vl_policy import encode, positions

        model, tokenizer = self.model, self.processor.tokenizer
        encoded = encode(self.processor, prompt, images, model)
        if prefix:
            forced = torch.tensor([tokenizer(prefix, add_special_tokens=False)["input_ids"]])
            encoded["input_ids"] = torch.cat([encoded["input_ids"], forced], dim=1)
            encoded["mm_token_type_ids"] = torch.cat(
                [encoded["mm_token_type_ids"], torch.zeros_like(forced)], dim=1
            )
        embeds = prompt_embeddings(model, encoded).expand(n, -1, -1).contiguous()
        ids = encoded["input_ids"]
        types = encoded["mm_token_type_ids"]
        eos = tokenizer.eos_token_id
        generator = torch.Generator().manual_seed(seed)
        full = positions(model, ids, encoded["image_grid_thw"], types)
        # after the prompt, M-RoPE advances all rows together: the next position is the last + 1
        next_position = full[:, :, -1:].expand(-1, n, -1) + 1
        cache = DynamicCache()
        new = torch.zeros((n, 0), dtype=torch.long)
        done = torch.zeros(n, dtype=torch.bool)
        with torch.no_grad():
            logits = model(
                inputs_embeds=embeds,
                position_ids=full.expand(-1, n, -1),
                past_key_values=cache,
                use_cache=True,
            ).logits[:, -1]
            for _ in range(max_new_tokens):
                if temperature <= 0:
                    token = logits.argmax(dim=-1)
                else:
                    token = torch.multinomial(
                        torch.softmax(logits / temperature, dim=-1), 1, generator=generator
                    )[:, 0]
                token = torch.where(done, torch.full_like(token, eos), token)
                new = torch.cat([new, token[:, None]], dim=1)
                done |= token == eos
                if bool(done.all()):
                    break
                logits = model(
                    inputs_embeds=model.model.get_input_embeddings()(token[:, None]),
                    position_ids=next_position,
                    past_key_values=cache,
                    use_cache=True,
                ).logits[:, -1]
                next_position = next_position + 1
        texts = []
        for row in new.tolist():
            cut = row.index(eos) if eos in row else len(row)
            texts.append(prefix + tokenizer.decode(row[:cut], skip_special_tokens=True))
        return texts
