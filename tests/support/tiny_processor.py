"""An offline Qwen2.5-VL processor folder for tests: no downloads, small images.

The folder holds the tiny tokenizer of :mod:`tests.support.tiny_model`, a ``Qwen2VLImageProcessor``
with small pixel limits, the Qwen2-VL video processor, and a default ``Qwen2_5_VLConfig`` whose
special-token ids point at the tiny tokenizer's (verl's ``hf_processor`` reads ``model_type`` from
``config.json``). ``verl.utils.tokenizer.hf_processor(path)`` loads it as a ``Qwen2_5_VLProcessor``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.tiny_model import build_tiny_tokenizer

PATCH = 28
MIN_PIXELS = PATCH * PATCH * 4
MAX_PIXELS = PATCH * PATCH * 64


def build_tiny_processor(path: Path) -> Path:
    """Save a Qwen2.5-VL processor (tiny tokenizer, small image limits) and config at ``path``."""
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    path = build_tiny_tokenizer(Path(path))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    video_processor = Qwen2VLVideoProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )
    processor.save_pretrained(str(path))
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    config.save_pretrained(str(path))
    return path
