"""The Chat page: questions answered through ``POST /api/chat``, asked from the browser.

The page itself holds no conversation: its script keeps the history and the provider key in
the browser (the key in ``sessionStorage``, sent only in the ``X-Chat-Api-Key`` header).
The page's dict tells the script the providers, their default models, whether the server
holds a key for each (from its settings; never the key), which provider answers by default,
and the registered model names, so answers can link the models they mention.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.chat.models import DEFAULT_MODELS, PROVIDERS
from chachaml.server.api.chat import KEY_HEADER, chat_options
from chachaml.server.ui.common import store_of, twin
from chachaml.tools import registry as registry_ops


async def chat_page(request: Request) -> dict[str, Any]:
    """Providers with their default models and server keys, and the names answers may mention."""
    models = await registry_ops.list_models(store_of(request))
    settings = chat_options(request.app.routes).settings
    keyed = {"anthropic": bool(settings.anthropic_api_key), "openai": bool(settings.openai_api_key)}
    providers = [
        {"name": p, "default_model": DEFAULT_MODELS[p], "server_key": keyed[p]} for p in PROVIDERS
    ]
    default = next((p["name"] for p in providers if p["server_key"]), PROVIDERS[0])
    return {
        "providers": providers,
        "default_provider": default,
        "server_keys": [p["name"] for p in providers if p["server_key"]],
        "models": [m.name for m in models],
        "key_header": KEY_HEADER.title(),
    }


def routes() -> list[Route]:
    """The Chat page and its JSON twin (``GET /api/chat``; questions are ``POST``)."""
    return twin("/chat", chat_page, "chat.html")
