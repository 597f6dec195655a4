"""Chat with your ML data: a bounded tool loop over the chachaml MCP tools.

``ask("which iris run has the best accuracy?")`` answers from the store with the
Anthropic or OpenAI API; every tool call behind the answer is in ``ChatAnswer.tool_calls``.
The provider SDKs (``pip install 'chachaml[chat]'``) are imported only when a chat starts.
"""

from chachaml.chat.errors import ChatError, IterationLimitReached, MissingApiKey, ProviderError
from chachaml.chat.loop import SYSTEM_PROMPT, aask, ask
from chachaml.chat.models import DEFAULT_MODELS, PROVIDERS, ChatAnswer, Message, ToolCall

__all__ = [
    "DEFAULT_MODELS",
    "PROVIDERS",
    "SYSTEM_PROMPT",
    "ChatAnswer",
    "ChatError",
    "IterationLimitReached",
    "Message",
    "MissingApiKey",
    "ProviderError",
    "ToolCall",
    "aask",
    "ask",
]
