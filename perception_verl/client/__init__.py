"""Async HTTP client for OpenAI-compatible chat servers (SGLang, vLLM, SGLang's router)."""

from perception_verl.client.chat import ChatClient, ChatClientConfig, ChatReply
from perception_verl.client.errors import ChatError, ClientLoopError, JudgeUnavailable

__all__ = ["ChatClient", "ChatClientConfig", "ChatError", "ChatReply", "ClientLoopError", "JudgeUnavailable"]
