"""A tiny random-weight Qwen2 chat model built offline, for a real inference engine to serve.

:func:`build_tiny_chat_model` saves a ``Qwen2ForCausalLM`` (2 layers, hidden 128, head_dim 64) with
random weights next to the project's tiny byte-level tokenizer (trained on the judge's own prompt text
and verdict tags, so prompts tokenize into realistic lengths) and its ChatML chat template. No hub
access. Its answers are noise unless decoding is constrained, which is the point: with a verdict regex
even this model answers in the exact format.
"""

from __future__ import annotations

from pathlib import Path

from perception_verl.judge.prompt import SYSTEM_PROMPT, build_messages, verdict_regex
from perception_verl_demo.samples import PROBLEMS, sample_responses
from perception_verl_demo.tiny_tokenizer import BASE_CORPUS, build_tiny_tokenizer

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 2
INTERMEDIATE = 256
MAX_POSITIONS = 32768
VOCAB = 2000


def judge_corpus() -> tuple[str, ...]:
    """Text the tokenizer is trained on: the base corpus, the judge prompt, verdict answers and the
    sample responses (so responses, too, take about as many tokens as a real tokenizer gives them)."""
    example = build_messages(["ABCD is a rectangle", "AC = 10"], "ABCD is a rectangle, so AC = 10.")
    verdicts = " ".join(f"<info{k}>{k % 2}</info{k}>" for k in range(1, 9))
    responses = [r.text for problem in PROBLEMS for r in sample_responses(problem)]
    return (
        *BASE_CORPUS,
        SYSTEM_PROMPT,
        *(m["content"] for m in example),
        verdicts,
        verdict_regex(8),
        *responses,
    )


def build_tiny_chat_model(path: Path, *, seed: int = 0) -> Path:
    """Save the tokenizer and a random-weight Qwen2 causal LM (float32 safetensors) at ``path``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    path = build_tiny_tokenizer(Path(path), vocab_size=VOCAB, corpus=judge_corpus())
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HIDDEN // HEADS,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(path), safe_serialization=True)
    return path
