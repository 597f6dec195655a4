"""The HTTP API, one module per part.

Typed endpoints (``endpoint``) for writes (``write``) and store reads (``store``), their
bodies (``schema``) and OpenAPI document (``openapi``), chat (``chat``), and the wiring into
the app (``routes``).
"""
