"""The operations: typed async functions over a ``Store``, shared by every client.

The tracking API, the MCP server, the web UI and the chat loop all call these, so they
validate their arguments here, once, and raise the errors of :mod:`chachaml.errors`.
"""
