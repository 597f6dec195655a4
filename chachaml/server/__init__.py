"""The servers over the operations: the MCP server (stdio and streamable HTTP) and the web app.

Nothing here is imported by ``import chachaml``; the MCP SDK, Starlette and uvicorn load only
when a server is built.
"""
