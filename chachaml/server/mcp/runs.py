"""The run and experiment tools of the default catalogue, as MCP tool functions over a store.

Each tool validates through the operations of :mod:`chachaml.tools`, returns structured
content (its output schema is the model in its return annotation) plus a compact text
rendering, and bounds what it returns with a limit and an "N more" note.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from chachaml.errors import ChachamlError
from chachaml.records.runs import (
    BestRun,
    Comparison,
    Dataset,
    Experiment,
    Run,
    RunInfo,
)
from chachaml.server.mcp import render
from chachaml.server.mcp.access import caller_user, check_tool
from chachaml.server.mcp.answer_cache import AnswerCache, Computed
from chachaml.store.protocol import Store
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops

ToolFn = Callable[..., Awaitable[CallToolResult]]

MAX_LIMIT = 200
MAX_EXPORT = 1000
MAX_EXPERIMENTS = 100

RunId = Annotated[str, Field(description="A run id exactly as list_runs or search_runs print it.")]
ExperimentName = Annotated[
    str | None, Field(description="Only runs of this experiment (exact name).")
]
Since = Annotated[
    str | None,
    Field(
        description="Only runs started at or after this ISO date or datetime (UTC unless it"
        " has an offset), e.g. 2026-01-01 or 2026-01-31T12:00:00Z."
    ),
]
Until = Annotated[
    str | None,
    Field(description="Only runs started before this ISO date or datetime, e.g. 2026-02-01."),
]
Limit = Annotated[
    int, Field(ge=1, le=MAX_LIMIT, description=f"How many runs to return (1-{MAX_LIMIT}).")
]
Status = Literal["running", "completed", "failed", "killed", "stopped"]
CompareOp = Literal[">", ">=", "<", "<=", "="]


class RunList(BaseModel):
    """Runs; ``more`` is true when further runs matched beyond the limit."""

    runs: list[RunInfo]
    more: bool


class BestRunAnswer(BaseModel):
    """The best run, or ``null`` when no run logged the metric."""

    best: BestRun | None


class Tags(BaseModel):
    """A run's tags."""

    run_id: str
    tags: dict[str, str]


class Note(BaseModel):
    """A run's markdown note."""

    run_id: str
    note: str


class Datasets(BaseModel):
    """The datasets a run used."""

    run_id: str
    datasets: list[Dataset]


class ExperimentList(BaseModel):
    """Experiments, most recently active first."""

    experiments: list[Experiment]
    total: int
    more: int


class Records(BaseModel):
    """Flat run records: fields, ``params.*``, ``metrics.*``, ``tags.*``; ``more`` as in runs."""

    records: list[dict[str, Any]]
    more: bool


def answer(data: BaseModel, text: str) -> CallToolResult:
    """A tool result: the model as structured content, and its text rendering."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=data.model_dump(mode="json"),
    )


async def _run_list(
    store: Store, found: list[RunInfo], limit: int, scope: str, experiment: str | None
) -> CallToolResult:
    """A listing cut to ``limit``; its text is rendered from the structured content itself.

    An empty listing says why when the store is empty or the experiment does not exist.
    """
    runs, more = found[:limit], len(found) > limit
    data = RunList(runs=runs, more=more).model_dump(mode="json")
    text = render.runs_text(data["runs"], more, scope)
    if not runs and (why := await experiment_ops.why_no_runs(store, experiment)):
        text = f"{text[:-1]}: {why}."
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=data,
    )


def reported(fn: ToolFn) -> ToolFn:
    """Check the caller's scope, and turn chachaml errors into tool errors the client reads.

    The SDK shows the client only "Error executing tool NAME" for an unexpected exception;
    a ``ToolError`` keeps its text, so an agent reads e.g. "run 'abc' not found".
    """
    name = fn.__name__

    @functools.wraps(fn)
    async def call(**kwargs: Any) -> CallToolResult:
        refused = check_tool(name)  # every tool passes here: none can forget the check
        if refused is not None:
            raise ToolError(refused)
        try:
            return await fn(**kwargs)
        except ChachamlError as exc:
            raise ToolError(str(exc)) from exc

    return call


TIMED_STATUSES = ("running", "killed")  # a running run turns killed when its heartbeat stops


def _timeless(runs: list[RunInfo]) -> bool:
    """Whether these runs read the same later if nothing is written (none is running)."""
    return all(r.status != "running" for r in runs)


def _scope(**filters: object) -> str:
    shown = [f"{k}={val}" for k, val in filters.items() if val is not None]
    return ", ".join(shown) if shown else "all runs"


def run_tools(store: Store, user: str = "mcp") -> list[ToolFn]:
    """The run and experiment tools of the default catalogue, bound to ``store``.

    Notes are attributed to the caller: the token's user over HTTP, ``user`` over stdio.
    ``list_runs`` and ``best_run`` answers are kept while the store is unchanged
    (:mod:`~chachaml.server.mcp.answer_cache`).
    """
    answers = AnswerCache(store)

    async def list_runs(
        experiment: ExperimentName = None,
        status: Annotated[Status | None, Field(description="Only runs in this state.")] = None,
        limit: Limit = 10,
        created_by: Annotated[str | None, Field(description="Only runs by this user.")] = None,
        since: Since = None,
        until: Until = None,
    ) -> Annotated[CallToolResult, RunList]:
        """List runs, newest first, with their status and latest metric values.

        Use it to see what was trained recently or by whom; narrow with experiment, status,
        created_by and a since/until window. Returns run ids to pass to get_run or
        compare_runs, and says how many more runs matched the limit.
        Example: {"experiment": "mnist", "status": "completed", "since": "2026-01-01"}.
        """

        async def compute() -> Computed:
            runs = await run_ops.list_runs(
                store,
                experiment=experiment,
                status=status,
                created_by=created_by,
                since=since,
                until=until,
                limit=limit + 1,  # one extra row says whether more runs match
            )
            scope = _scope(experiment=experiment, status=status, created_by=created_by,
                           since=since, until=until)  # fmt: skip
            listed = await _run_list(store, runs, limit, f"{scope}; newest first", experiment)
            return listed, status not in TIMED_STATUSES and _timeless(runs[:limit])

        key = ("list_runs", experiment, status, limit, created_by, since, until)
        return await answers.answer(key, compute)

    async def get_run(run_id: RunId) -> Annotated[CallToolResult, Run]:
        """Everything about one run: params, metric summaries, tags, note, datasets, artifacts.

        Use it after list_runs/search_runs/best_run to inspect a run in detail.
        Example: {"run_id": "3f2c9a..."}.
        """
        run = await run_ops.get_run(store, run_id)
        return answer(run, render.run_text(run))

    async def compare_runs(
        run_ids: Annotated[
            list[str],
            Field(
                min_length=2,
                max_length=run_ops.MAX_COMPARE,
                description=f"2 to {run_ops.MAX_COMPARE} run ids.",
            ),
        ],
    ) -> Annotated[CallToolResult, Comparison]:
        """Compare runs side by side: the params that differ and every latest metric value.

        Use it to explain why one run beat another.
        Example: {"run_ids": ["3f2c9a...", "8b71d0..."]}.
        """
        comparison = await run_ops.compare_runs(store, run_ids)
        return answer(comparison, render.comparison_text(comparison))

    async def search_runs(
        experiment: ExperimentName = None,
        metric_key: Annotated[
            str | None, Field(description="Metric to threshold, e.g. accuracy.")
        ] = None,
        op: Annotated[
            CompareOp | None, Field(description="How the latest value compares to metric_value.")
        ] = None,
        metric_value: Annotated[float | None, Field(description="The threshold.")] = None,
        limit: Limit = 20,
        since: Since = None,
        until: Until = None,
    ) -> Annotated[CallToolResult, RunList]:
        """Find runs whose latest value of a metric passes a threshold.

        Give metric_key, op and metric_value together (or none, to list newest first).
        Results are ordered by that metric (best first for >, >=, =; lowest first for <, <=).
        Example: {"metric_key": "accuracy", "op": ">=", "metric_value": 0.9}.
        """
        runs = await run_ops.search_runs(
            store,
            experiment=experiment,
            metric_key=metric_key,
            op=op,
            metric_value=metric_value,
            since=since,
            until=until,
            limit=limit + 1,
        )
        cond = f"{metric_key} {op} {metric_value}" if metric_key else None
        scope = _scope(experiment=experiment, where=cond, since=since, until=until)
        return await _run_list(store, runs, limit, scope, experiment)

    async def best_run(
        metric: Annotated[str, Field(description="The metric to rank by, e.g. val_loss.")],
        experiment: ExperimentName = None,
        direction: Annotated[
            Literal["max", "min"], Field(description="max if higher is better, min if lower.")
        ] = "max",
        since: Since = None,
        until: Until = None,
    ) -> Annotated[CallToolResult, BestRunAnswer]:
        """The single run with the highest (or lowest) latest value of a metric.

        Answers "which run had the best accuracy last month?" in one call; runs that never
        logged the metric are ignored, and the answer is null when none did.
        Example: {"metric": "val_loss", "direction": "min", "since": "2026-01-01"}.
        """

        async def compute() -> Computed:
            best = await run_ops.best_run(
                store, metric, experiment=experiment, direction=direction, since=since, until=until
            )
            scope = _scope(experiment=experiment, since=since, until=until)
            text = render.best_text(best, metric, scope)
            if best is None and (
                why := await experiment_ops.why_no_metric(store, metric, experiment)
            ):
                text = f"{text[:-1]}: {why}" + ("" if why.endswith("?") else ".")
            return answer(BestRunAnswer(best=best), text), _timeless([best.run] if best else [])

        key = ("best_run", metric, experiment, direction, since, until)
        return await answers.answer(key, compute)

    async def add_tag(
        run_id: RunId,
        key: Annotated[str, Field(description="Tag key, e.g. reviewed.")],
        value: Annotated[str, Field(description="Tag value, e.g. yes.")],
    ) -> Annotated[CallToolResult, Tags]:
        """Set one tag on a run (overwriting the same key); returns the run's tags.

        Use it to mark runs, e.g. as reviewed or as a candidate for promotion.
        Example: {"run_id": "3f2c9a...", "key": "candidate", "value": "yes"}.
        """
        tags = await run_ops.add_tag(store, run_id, key, value, caller_user(user))
        return answer(Tags(run_id=run_id, tags=tags), render.tags_text(run_id, tags))

    async def set_note(
        run_id: RunId,
        note: Annotated[str, Field(description="Markdown; replaces the run's current note.")],
    ) -> Annotated[CallToolResult, Note]:
        """Replace a run's markdown note, e.g. with a summary of what was learned.

        The previous note is overwritten; read it first with get_run to extend it.
        Example: {"run_id": "3f2c9a...", "note": "Best so far: lr=0.01 beats 0.1."}.
        """
        await run_ops.set_note(store, run_id, note, caller_user(user))
        return answer(
            Note(run_id=run_id, note=note), f"Note of run {run_id} set ({len(note)} characters)."
        )

    async def get_tags(run_id: RunId) -> Annotated[CallToolResult, Tags]:
        """A run's tags. Example: {"run_id": "3f2c9a..."}."""
        tags = await run_ops.get_tags(store, run_id)
        return answer(Tags(run_id=run_id, tags=tags), render.tags_text(run_id, tags))

    async def get_datasets(run_id: RunId) -> Annotated[CallToolResult, Datasets]:
        """The datasets a run used: role (train, eval...), name, rows, columns, source, digest.

        Use it to check two runs were trained on the same data. Example: {"run_id": "3f2c9a..."}.
        """
        run = await run_ops.get_run(store, run_id)
        text = (
            f"Datasets of run {run.id}:\n{render.datasets_table(run.datasets)}"
            if run.datasets
            else f"Run {run.id} logged no datasets."
        )
        return answer(Datasets(run_id=run.id, datasets=run.datasets), text)

    async def list_experiments() -> Annotated[CallToolResult, ExperimentList]:
        """Every experiment with its run count, owner and last activity, most recent first.

        Start here to learn what exists before filtering runs by experiment.
        """
        found = await experiment_ops.list_experiments(store)
        shown = found[:MAX_EXPERIMENTS]
        return answer(
            ExperimentList(experiments=shown, total=len(found), more=len(found) - len(shown)),
            render.experiments_text(shown, len(found)),
        )

    async def create_experiment(
        name: Annotated[str, Field(description="Experiment name, e.g. churn-model.")],
        description: Annotated[str | None, Field(description="What it is about.")] = None,
        owner: Annotated[str | None, Field(description="Who is responsible for it.")] = None,
    ) -> Annotated[CallToolResult, Experiment]:
        """Create an experiment, or update the description/owner of an existing one.

        Example: {"name": "churn-model", "description": "Monthly churn classifier"}.
        """
        exp = await experiment_ops.create_experiment(store, name, description, owner)
        return answer(
            exp,
            f"Experiment {exp.name!r} ready ({exp.run_count} runs; owner: {exp.owner or '-'}).",
        )

    async def export_runs(
        experiment: ExperimentName = None,
        limit: Annotated[
            int,
            Field(ge=1, le=MAX_EXPORT, description=f"How many runs to export (1-{MAX_EXPORT})."),
        ] = 100,
    ) -> Annotated[CallToolResult, Records]:
        """Runs as flat records (one per run: fields, params.*, metrics.*, tags.*), newest first.

        Use it to analyse many runs at once, e.g. to see how a param relates to a metric.
        Example: {"experiment": "mnist", "limit": 200}.
        """
        records = await run_ops.export_runs(store, experiment=experiment, limit=limit + 1)
        shown = records[:limit]
        more = len(records) > limit
        text = render.records_text(shown, more)
        if not shown and (why := await experiment_ops.why_no_runs(store, experiment)):
            text = f"{text[:-1]}: {why}."
        return answer(Records(records=shown, more=more), text)

    return [
        list_runs,
        get_run,
        compare_runs,
        search_runs,
        best_run,
        add_tag,
        set_note,
        get_tags,
        get_datasets,
        list_experiments,
        create_experiment,
        export_runs,
    ]
