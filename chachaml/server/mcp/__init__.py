"""The MCP server, one module per toolset.

Runs, registry, metrics, artifacts, pipelines and alerts each have a module; ``server``
registers them, ``stdio`` is the wire of ``chachaml mcp``, ``access`` says who each call acts
as and ``render`` draws the text tables tools return. Kept empty: ``chachaml mcp`` imports
``stdio`` to answer ``initialize`` before the SDK loads.
"""
