"""The tiny Qwen2-VL-shaped tokenizer for tests: the package's own builder, re-exported."""

from perception_verl_demo.tiny_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_tokenizer

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_tokenizer"]
