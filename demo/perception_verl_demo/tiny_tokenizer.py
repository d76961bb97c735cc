"""A tiny Qwen2-VL-shaped tokenizer trained locally in a second, for runs without downloads.

The CPU smoke run (and tests) need a real Hugging Face tokenizer folder for verl's reward loop
(``actor_rollout_ref.model.path``), with Qwen2-VL's special and vision tokens and a chat template,
but no hub access. :func:`build_tiny_tokenizer` trains a byte-level BPE with ``tokenizers`` and
saves it through ``PreTrainedTokenizerFast``. Byte-level BPE round-trips any text exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

BASE_CORPUS = (
    "<think>\nThe figure shows triangle ABC with a right angle at C, AC = 6 and BC = 8.\n</think>\n"
    "<answer>\nSo the answer is \\boxed{10}.\n</answer>",
    "JKLM is a parallelogram. Side JK has length 3f - 6 and side ML has length 2f + 4. Find f.",
    "Circle O has radius 5. Find the area of the circle. Round to the nearest tenth.",
    "Reason about the problem step by step first, and give your answer inside answer tags.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ +-*/=()[]{}<>^_\\.,;:!?'\"|&%$#@~`",
)


def build_tiny_tokenizer(path: Path, vocab_size: int = 600, corpus: Iterable[str] = BASE_CORPUS) -> Path:
    """Train a byte-level BPE tokenizer with Qwen2-VL's special tokens and save it at ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(corpus) * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(path))
    return path
