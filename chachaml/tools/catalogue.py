"""The MCP tool catalogue: which tools exist, in which toolset, and what each one touches.

The default toolset is the 16 tools agents and prompts written for chachaml rely on; the
others are opt-in groups. ``writes`` marks tools that change stored data, which
``--read-only`` removes. Adapters (the MCP server, docs tests) read this table rather than
keeping their own lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chachaml.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its name, title, toolset and how it touches stored data and the world.

    ``writes`` also covers a tool that acts outside chachaml (``open_world``: it sends a
    webhook), so ``--read-only`` and read tokens leave it out too. ``admin`` tools need an
    admin caller (they make the server send to URLs of the caller's choosing).
    """

    name: str
    title: str
    toolset: str
    writes: bool = False
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = False
    admin: bool = False


CATALOGUE: tuple[ToolSpec, ...] = (
    ToolSpec("list_runs", "List runs", "default"),
    ToolSpec("get_run", "Get a run", "default"),
    ToolSpec("compare_runs", "Compare runs", "default"),
    ToolSpec("search_runs", "Search runs by metric", "default"),
    ToolSpec("best_run", "Best run for a metric", "default"),
    ToolSpec("list_models", "List registered models", "default"),
    ToolSpec("get_model", "Get a model", "default"),
    ToolSpec("get_model_version", "Get a model version", "default"),
    ToolSpec("diff_model_versions", "Diff two model versions", "default"),
    # overwrites the key's value: destructive in MCP's sense (an update, not only an addition)
    ToolSpec("add_tag", "Tag a run", "default", writes=True, destructive=True),
    ToolSpec("set_note", "Set a run's note", "default", writes=True, destructive=True),
    ToolSpec("get_tags", "Get a run's tags", "default"),
    ToolSpec("get_datasets", "Get a run's datasets", "default"),
    ToolSpec("list_experiments", "List experiments", "default"),
    # overwrites an existing experiment's description and owner
    ToolSpec("create_experiment", "Create an experiment", "default", writes=True, destructive=True),
    ToolSpec("export_runs", "Export runs as records", "default"),
    ToolSpec("get_metric_history", "Metric history", "metrics"),
    ToolSpec("plot_metrics", "Plot metrics", "metrics"),
    ToolSpec("list_artifacts", "List a run's artifacts", "artifacts"),
    ToolSpec("read_artifact", "Read an artifact", "artifacts"),
    ToolSpec("promote_model", "Promote a model version", "registry", writes=True, destructive=True),
    ToolSpec("set_model_note", "Set a model's note", "registry", writes=True, destructive=True),
    ToolSpec("list_pipelines", "List pipelines", "pipelines"),
    ToolSpec("get_pipeline", "Get a pipeline", "pipelines"),
    ToolSpec("list_alerts", "List alert rules", "alerts"),
    ToolSpec("alert_history", "Alert history", "alerts"),
    ToolSpec("check_alerts", "Evaluate alerts now", "alerts", writes=True, idempotent=False),
    # overwrites the rule's muted flag
    ToolSpec("mute_alert", "Mute or unmute an alert rule", "alerts", writes=True, destructive=True),
    # stores nothing, but POSTs to the rule's webhook each time it is called
    ToolSpec(
        "send_test_alert",
        "Send a test alert",
        "alerts",
        writes=True,
        idempotent=False,
        open_world=True,
    ),
    # renaming, archiving and tagging experiments: opt-in housekeeping
    ToolSpec(
        "rename_experiment", "Rename an experiment", "experiments", writes=True, destructive=True
    ),
    ToolSpec(
        "archive_experiment",
        "Archive or restore an experiment",
        "experiments",
        writes=True,
        destructive=True,
    ),
    ToolSpec(
        "set_experiment_tag", "Tag an experiment", "experiments", writes=True, destructive=True
    ),
    # reads until the run ends or a condition holds: the same answer for the same state
    ToolSpec("wait_for_run", "Wait for a run", "watch"),
    # ends someone's training early; asking again keeps the first request
    ToolSpec("stop_run", "Ask a run to stop", "watch", writes=True, destructive=True),
    # admin: each makes (or stops) the server POSTing every matching event to a URL
    ToolSpec(
        "subscribe",
        "Subscribe a webhook to events",
        "subscriptions",
        writes=True,
        idempotent=False,
        open_world=True,
        admin=True,
    ),
    ToolSpec(
        "unsubscribe",
        "Remove a webhook subscription",
        "subscriptions",
        writes=True,
        destructive=True,
        admin=True,
    ),
    ToolSpec("list_subscriptions", "List webhook subscriptions", "subscriptions", admin=True),
)

SPECS: dict[str, ToolSpec] = {spec.name: spec for spec in CATALOGUE}
DEFAULT_TOOLS: tuple[str, ...] = tuple(s.name for s in CATALOGUE if s.toolset == "default")
OPT_IN_TOOLSETS: tuple[str, ...] = tuple(
    dict.fromkeys(s.toolset for s in CATALOGUE if s.toolset != "default")
)


def parse_toolsets(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Opt-in toolset names from ``"metrics,artifacts"`` or a list; ``all`` means every one."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [item.strip() for item in items if item.strip()]
    if "all" in names:
        return OPT_IN_TOOLSETS
    unknown = [n for n in names if n not in OPT_IN_TOOLSETS]
    if unknown:
        raise InvalidInput(
            f"unknown toolset {', '.join(map(repr, unknown))}; choose from"
            f" {', '.join(OPT_IN_TOOLSETS)} (or all)"
        )
    return tuple(dict.fromkeys(names))


def selected_tools(toolsets: Iterable[str] = (), *, read_only: bool = False) -> tuple[str, ...]:
    """The tool names a server exposes: the default 16, the opt-in groups, minus writes."""
    groups = {"default", *toolsets}
    return tuple(s.name for s in CATALOGUE if s.toolset in groups and not (read_only and s.writes))
