"""Model providers behind one seam: a :class:`Conversation` per chat, one module per provider.

``conversation`` holds the seam and picks the provider; ``anthropic`` and ``openai`` each
speak one provider's wire format through its official SDK, imported only when a chat starts.
"""
