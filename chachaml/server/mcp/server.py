"""The MCP server: the tool catalogue, resources and prompts over one store.

``build_mcp(store)`` constructs the server (no I/O); ``serve_stdio(wire, url)`` opens the store
and speaks MCP on stdin/stdout (see :mod:`chachaml.server.mcp.stdio`);
:func:`chachaml.server.app.create_app` mounts the same server as streamable HTTP at ``/mcp``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Iterable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.prompts import Prompt
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from chachaml import __version__
from chachaml.client.remote import open_any_store
from chachaml.errors import ChachamlError
from chachaml.server.mcp.access import CallerMiddleware
from chachaml.server.mcp.alerts import alert_tools
from chachaml.server.mcp.arguments import ArgumentCheck
from chachaml.server.mcp.artifacts import artifact_tools
from chachaml.server.mcp.experiments import experiment_tools
from chachaml.server.mcp.metrics import metric_tools
from chachaml.server.mcp.pipelines import pipeline_tools
from chachaml.server.mcp.registration import bound_tool
from chachaml.server.mcp.registry import registry_tools
from chachaml.server.mcp.resource_updates import ResourceSubscriptions
from chachaml.server.mcp.runs import ToolFn, reported, run_tools
from chachaml.server.mcp.stdio import NAME, EarlyStdio, instructions
from chachaml.server.mcp.subscriptions import subscription_tools
from chachaml.server.mcp.watch import watch_tools
from chachaml.settings import S3Settings
from chachaml.store.artifacts import ArtifactStore, open_artifact_store
from chachaml.store.protocol import Store
from chachaml.store.server_state import is_server_store
from chachaml.tools import pipelines as pipeline_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.catalogue import SPECS, selected_tools
from chachaml.tools.events import EventFeed, event_source
from chachaml.tools.webhooks import Delivery


def _annotations(name: str) -> ToolAnnotations:
    spec = SPECS[name]
    return ToolAnnotations(
        title=spec.title,
        read_only_hint=not spec.writes,
        destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent,
        open_world_hint=spec.open_world,
    )


def _all_tools(
    store: Store, artifacts: ArtifactStore, user: str, delivery: Delivery, events: EventFeed | None
) -> list[ToolFn]:
    return [
        *watch_tools(store, user, events),
        *run_tools(store, user),
        *experiment_tools(store, user),
        *registry_tools(store, user),
        *metric_tools(store),
        *artifact_tools(store, artifacts),
        *pipeline_tools(store),
        *alert_tools(store, delivery),
        *subscription_tools(store, user, delivery),
    ]


def build_mcp(
    store: Store,
    *,
    artifacts: ArtifactStore | None = None,
    toolsets: Iterable[str] = (),
    read_only: bool = False,
    user: str = "mcp",
    delivery: Delivery | None = None,
    events: EventFeed | None = None,
    subscriptions: ResourceSubscriptions | None = None,
) -> MCPServer:
    """The chachaml MCP server over an open store: the default 16 tools plus opt-in toolsets.

    ``read_only`` leaves out every tool that writes; registry changes are attributed to
    ``user``; alerts fired by ``check_alerts`` are delivered as ``delivery`` says;
    ``wait_for_run`` reads the server's ``events`` (without a feed, each wait reads its own);
    resources can be subscribed to when ``subscriptions`` is given (the caller runs it).
    Nothing is opened or read until a request arrives.
    """
    wanted = selected_tools(toolsets, read_only=read_only)
    tools = _all_tools(store, artifacts or open_artifact_store("."), user,
                       delivery or Delivery(), events)  # fmt: skip
    by_name = {fn.__name__: fn for fn in tools}
    registered = [
        bound_tool(
            reported(by_name[name]),
            title=SPECS[name].title,
            description=inspect.cleandoc(by_name[name].__doc__ or ""),
            annotations=_annotations(name),
        )
        for name in wanted
    ]
    server: MCPServer = MCPServer(
        NAME,
        title=NAME,
        instructions=instructions(store.url),
        version=__version__,
        log_level="WARNING",
        tools=registered,
        middleware=[
            CallerMiddleware(user),  # who each call acts as; writes check it
            # errors an agent can act on, checked against the argument models built above
            ArgumentCheck({tool.name: tool.fn_metadata for tool in registered}),
        ],
    )
    _add_resources(server, store)
    if subscriptions is not None:
        subscriptions.install(server)
    _add_prompts(server)
    return server


async def _as_json(read: Awaitable[BaseModel]) -> str:
    """A resource's record as JSON; what the store cannot find is the SDK's not-found error."""
    try:
        found = await read
    except ChachamlError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    return found.model_dump_json(indent=1)


def _add_resources(server: MCPServer, store: Store) -> None:
    @server.resource(
        "chachaml://runs/{run_id}",
        name="run",
        title="A run",
        description="One run in full (params, metrics, tags, note, datasets, artifacts) as JSON.",
        mime_type="application/json",
    )
    async def run_resource(run_id: str) -> str:
        return await _as_json(run_ops.get_run(store, run_id))

    @server.resource(
        "chachaml://models/{name}/{version}",
        name="model_version",
        title="A model version",
        description="One registered model version as JSON; version is a number or a stage name.",
        mime_type="application/json",
    )
    async def model_version_resource(name: str, version: str) -> str:
        number, stage = (int(version), None) if version.isdigit() else (None, version)
        return await _as_json(registry_ops.get_model_version(store, name, number, stage))

    @server.resource(
        "chachaml://models/{name}",
        name="model",
        title="A registered model",
        description="One registered model with its versions, aliases and stage history, as JSON.",
        mime_type="application/json",
    )
    async def model_resource(name: str) -> str:
        return await _as_json(registry_ops.get_model(store, name))

    @server.resource(
        "chachaml://pipelines/{pipeline_id}",
        name="pipeline",
        title="A pipeline",
        description="One pipeline with its steps (status, attempts, runs, results) as JSON.",
        mime_type="application/json",
    )
    async def pipeline_resource(pipeline_id: str) -> str:
        return await _as_json(pipeline_ops.get_pipeline(store, pipeline_id))


def analyse_experiment(experiment: str) -> str:
    """Summarise an experiment: what was tried, what worked best, and what to try next."""
    return (
        f"Analyse the chachaml experiment {experiment!r}.\n"
        f"1. list_runs with experiment={experiment!r} (limit 50) to see what was run.\n"
        "2. best_run for its main metric (direction min for losses).\n"
        "3. compare_runs on the best run and two typical ones to find the params that matter.\n"
        "Report: what was tried, the best run (id, metric value, params), which params seem"
        " to drive the metric, failed runs and why, and two concrete next experiments."
    )


def compare_last_runs(n: int = 5, experiment: str | None = None) -> str:
    """Compare the most recent runs and explain how they differ."""
    scope = f" of experiment {experiment!r}" if experiment else ""
    return (
        f"Compare the last {n} runs{scope} in chachaml.\n"
        f"Call list_runs (limit {n}{f', experiment={experiment!r}' if experiment else ''}),"
        " then compare_runs with their run ids. Explain which params differ, how the"
        " metrics moved, and which run you would keep, in a short table and three bullets."
    )


@functools.cache
def _prompts() -> tuple[Prompt, ...]:
    """The prompts, built once per process (they depend on no store).

    Building one (its argument model and schema, with pydantic) cost every server ~1 ms.
    """
    return (
        Prompt.from_function(analyse_experiment, title="Analyse an experiment"),
        Prompt.from_function(compare_last_runs, title="Compare the last N runs"),
    )


def _add_prompts(server: MCPServer) -> None:
    for prompt in _prompts():
        server.add_prompt(prompt)


async def serve_stdio(
    wire: EarlyStdio,
    store_url: str,
    artifact_root: str,
    *,
    toolsets: Iterable[str] = (),
    read_only: bool = False,
    user: str = "mcp",
    s3: S3Settings | None = None,
    delivery: Delivery | None = None,
) -> None:
    """Open the store and speak MCP on the claimed stdio ``wire`` until the client hangs up.

    Alert webhooks queued meanwhile are sent by a delivery worker alongside (over a database;
    a server reached over HTTP sends its own).
    """
    import anyio

    from chachaml.tools.deliveries import run_delivery_worker

    store = await open_any_store(store_url)
    try:
        # one reader of the outbox for every wait_for_run and subscription of this process
        source = event_source(store)  # a database's outbox, or a remote store's server's
        events = EventFeed(source) if source is not None else None
        subscriptions = ResourceSubscriptions(store, events) if events is not None else None
        server = build_mcp(
            store,
            artifacts=open_artifact_store(artifact_root, s3),
            toolsets=toolsets,
            read_only=read_only,
            user=user,
            delivery=delivery,
            events=events,
            subscriptions=subscriptions,
        )
        async with anyio.create_task_group() as tasks:
            if is_server_store(store):  # a remote store's server delivers its own
                tasks.start_soon(run_delivery_worker, store, delivery or Delivery())
            if events is not None:
                tasks.start_soon(events.run)
            if subscriptions is not None:
                tasks.start_soon(subscriptions.run)
            await wire.serve(server)
            tasks.cancel_scope.cancel()
    finally:
        await store.close()
